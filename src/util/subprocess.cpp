// fork + execvp with a pipe for the child's output.
#include "matvae/util/subprocess.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace matvae {

ProcessResult run_process(const std::vector<std::string>& argv, const std::filesystem::path& cwd) {
  ProcessResult result;
  if (argv.empty()) return result;
  int fds[2];
  if (::pipe(fds) != 0) {
    result.output = std::string("pipe failed: ") + std::strerror(errno);
    return result;
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    result.output = std::string("fork failed: ") + std::strerror(errno);
    return result;
  }
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) _exit(126);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    const std::string msg = argv[0] + ": cannot run: " + std::strerror(errno) + "\n";
    (void)!::write(STDERR_FILENO, msg.data(), msg.size());
    _exit(127);
  }
  ::close(fds[1]);
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf, static_cast<size_t>(n));
    if (result.output.size() > 8192) result.output.erase(0, result.output.size() - 4096);
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (result.output.size() > 4096) result.output.erase(0, result.output.size() - 4096);
  return result;
}

pid_t spawn_process(const std::vector<std::string>& argv, const std::filesystem::path& output_file,
                    const std::filesystem::path& cwd) {
  if (argv.empty()) return -1;
  // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::string out = output_file.empty() ? std::string("/dev/null") : output_file.string();
  const std::string dir = cwd.string();
  const pid_t pid = ::fork();
  if (pid != 0) return pid < 0 ? -1 : pid;
  const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) _exit(126);
  ::dup2(fd, STDOUT_FILENO);
  ::dup2(fd, STDERR_FILENO);
  ::close(fd);
  if (!dir.empty() && ::chdir(dir.c_str()) != 0) _exit(126);
  ::execvp(args[0], args.data());
  _exit(127);
}

int wait_process(pid_t pid, int* signal) {
  int status = 0;
  if (signal) *signal = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status) && signal) *signal = WTERMSIG(status);
  return -1;
}

}  // namespace matvae
