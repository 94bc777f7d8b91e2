// Starting and supervising the local ranks; see launcher.h.
#include "matvae/dist/launcher.h"

#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "matvae/util/error.h"

extern char** environ;

namespace matvae {
namespace {

std::atomic<int> g_signal{0};
extern "C" void on_launcher_signal(int sig) { g_signal.store(sig); }

/// The environment of rank `rank`: this process's, with the launcher's variables replaced.
std::vector<std::string> rank_environment(int64_t rank, int64_t world, int port) {
  std::vector<std::string> env;
  const std::vector<std::string> ours = {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=",
                                         "MASTER_PORT="};
  for (char** e = environ; *e; ++e) {
    const std::string v = *e;
    bool replaced = false;
    for (const auto& prefix : ours) replaced = replaced || v.rfind(prefix, 0) == 0;
    if (!replaced) env.push_back(v);
  }
  env.push_back(fmt::format("RANK={}", rank));
  env.push_back(fmt::format("WORLD_SIZE={}", world));
  env.push_back(fmt::format("LOCAL_RANK={}", rank));
  env.push_back(fmt::format("LOCAL_WORLD_SIZE={}", world));
  env.push_back("MASTER_ADDR=127.0.0.1");
  env.push_back(fmt::format("MASTER_PORT={}", port));
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

std::string describe_end(int status) {
  return fmt::format("was ended by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
}

}  // namespace

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("cannot open a socket to find a free port: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) throw Error(std::string("cannot find a free port on 127.0.0.1: ") + std::strerror(errno));
  return ntohs(addr.sin_port);
}

int launch_local_ranks(const std::vector<std::string>& args, const LaunchOptions& options) {
  int port = options.port;
  if (port == 0) {
    const char* given = std::getenv("MASTER_PORT");
    if (given && *given) {
      char* end = nullptr;
      const long p = std::strtol(given, &end, 10);
      if (*end != '\0' || p <= 0 || p > 65535)
        throw UsageError(fmt::format("MASTER_PORT={}: not a port (1 to 65535)", given));
      port = static_cast<int>(p);
    } else {
      port = free_local_port();
    }
  }
  // Ctrl-C reaches the ranks from the terminal; the launcher stays to supervise them and passes a
  // signal sent to it alone on to them.
  g_signal.store(0);
  const auto old_int = std::signal(SIGINT, on_launcher_signal);
  const auto old_term = std::signal(SIGTERM, on_launcher_signal);
  bool passed_on = false;
  // This very program, by its path (argv[0] may be a bare name found on PATH).
  std::error_code ec;
  const std::string program = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec) throw Error("cannot find this program's path to start the ranks: " + ec.message());
  std::vector<pid_t> pids;
  for (int64_t r = 0; r < options.nproc; ++r) {
    std::vector<std::string> argv = {program};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> env = rank_environment(r, options.nproc, port);
    auto c_argv = c_strings(argv);
    auto c_env = c_strings(env);
    const pid_t pid = ::fork();
    if (pid < 0) {
      for (const pid_t p : pids) ::kill(p, SIGKILL);
      std::signal(SIGINT, old_int);
      std::signal(SIGTERM, old_term);
      throw Error(fmt::format("cannot start rank {}: {}", r, std::strerror(errno)));
    }
    if (pid == 0) {
      ::execve(c_argv[0], c_argv.data(), c_env.data());
      std::_Exit(127);
    }
    pids.push_back(pid);
  }
  // Wait for every rank; after the first failure the others get `grace` to notice and stop.
  int result = 0;
  size_t running = pids.size();
  std::chrono::steady_clock::time_point kill_at = std::chrono::steady_clock::time_point::max();
  while (running > 0) {
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      for (size_t r = 0; r < pids.size(); ++r)
        if (pids[r] == done) {
          pids[r] = -1;
          --running;
          const int code = exit_code_of(status);
          // A rank that exits with an error has said why; one that a signal ended could not.
          if (WIFSIGNALED(status) && options.log)
            options.log(fmt::format("rank {} of {} {}", r, pids.size(), describe_end(status)));
          if (code != 0 && result == 0) {
            result = code;
            kill_at = std::chrono::steady_clock::now() + options.grace;
          }
        }
      continue;
    }
    if (g_signal.load() != 0 && !passed_on) {
      for (const pid_t p : pids)
        if (p > 0) ::kill(p, SIGTERM);
      passed_on = true;
    }
    if (done < 0 && errno != EINTR) break;
    if (std::chrono::steady_clock::now() >= kill_at)
      for (const pid_t p : pids)
        if (p > 0) ::kill(p, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::signal(SIGINT, old_int);
  std::signal(SIGTERM, old_term);
  return result;
}

}  // namespace matvae
