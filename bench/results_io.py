"""What the stand-alone benchmark scripts (dist_scaling.py, busy_machine.py) share: the commit they
ran at, and writing a result as JSON and Markdown side by side, each file atomically."""
import json
import os
import subprocess


def commit_stamp():
    """The short commit of HEAD, with "-dirty" when tracked files differ from it."""
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def write_result(results_dir, base_name, result, md_lines):
    """results_dir/base_name.json (result) and .md (md_lines), each written whole or not at all."""
    os.makedirs(results_dir, exist_ok=True)
    base = os.path.join(results_dir, base_name)
    with open(base + ".json.tmp", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(base + ".json.tmp", base + ".json")
    with open(base + ".md.tmp", "w") as f:
        f.write("\n".join(md_lines) + "\n")
    os.replace(base + ".md.tmp", base + ".md")
