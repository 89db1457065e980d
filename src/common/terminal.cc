#include "common/terminal.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace roam {

Result<pb::Termios> ReadTermios(int fd) {
  termios t{};
  if (::tcgetattr(fd, &t) != 0) return Status::Errno("tcgetattr");
  pb::Termios m;
  m.set_iflag(t.c_iflag);
  m.set_oflag(t.c_oflag);
  m.set_cflag(t.c_cflag);
  m.set_lflag(t.c_lflag);
  m.set_cc(std::string(reinterpret_cast<const char*>(t.c_cc), sizeof t.c_cc));
  return m;
}

Status ApplyTermios(int fd, const pb::Termios& mode) {
  termios t{};
  if (::tcgetattr(fd, &t) != 0) return Status::Errno("tcgetattr");
  t.c_iflag = mode.iflag();
  t.c_oflag = mode.oflag();
  t.c_cflag = mode.cflag();
  t.c_lflag = mode.lflag();
  std::memcpy(t.c_cc, mode.cc().data(), std::min(mode.cc().size(), sizeof t.c_cc));
  if (::tcsetattr(fd, TCSANOW, &t) != 0) return Status::Errno("tcsetattr");
  return Status::Ok();
}

pb::WindowSize ReadWindowSize(int fd) {
  pb::WindowSize w;
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0) {
    w.set_rows(ws.ws_row);
    w.set_cols(ws.ws_col);
    w.set_xpixel(ws.ws_xpixel);
    w.set_ypixel(ws.ws_ypixel);
  }
  return w;
}

Status ApplyWindowSize(int fd, const pb::WindowSize& size) {
  winsize ws{};
  ws.ws_row = static_cast<unsigned short>(size.rows());
  ws.ws_col = static_cast<unsigned short>(size.cols());
  ws.ws_xpixel = static_cast<unsigned short>(size.xpixel());
  ws.ws_ypixel = static_cast<unsigned short>(size.ypixel());
  if (::ioctl(fd, TIOCSWINSZ, &ws) != 0) return Status::Errno("TIOCSWINSZ");
  return Status::Ok();
}

Result<int> OpenPtyPeer(int master) {
  int fd = ::ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return Status::Errno("open the pseudo-terminal's slave");
  return fd;
}

Result<std::string> TakeUnreadInput(int tty) {
  termios saved{};
  if (::tcgetattr(tty, &saved) != 0) return Status::Errno("tcgetattr");
  // Out of canonical mode, a line still being typed is readable too (the
  // kernel makes everything buffered available when ICANON goes off).
  termios drain = saved;
  drain.c_lflag &= ~static_cast<tcflag_t>(ICANON);
  drain.c_cc[VMIN] = 0;
  drain.c_cc[VTIME] = 0;
  if (::tcsetattr(tty, TCSANOW, &drain) != 0) return Status::Errno("tcsetattr");
  std::string got;
  char buf[4096];
  Status st;
  for (;;) {
    ssize_t n = ::read(tty, buf, sizeof buf);
    if (n > 0) {
      got.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN) st = Status::Errno("read the terminal's input");
    break;
  }
  if (::tcsetattr(tty, TCSANOW, &saved) != 0 && st.ok()) st = Status::Errno("tcsetattr");
  if (!st.ok()) {
    (void)PutUnreadInput(tty, got);
    return st;
  }
  // A canonical terminal keeps a typed ^D as a NUL that ends the line.
  if (saved.c_lflag & ICANON) std::replace(got.begin(), got.end(), '\0', static_cast<char>(saved.c_cc[VEOF]));
  return got;
}

Status PutUnreadInput(int tty, const std::string& bytes, bool echoed) {
  if (bytes.empty()) return Status::Ok();
  if (!echoed) {
    for (char c : bytes) {
      if (::ioctl(tty, TIOCSTI, &c) != 0) return Status::Errno("put input into the terminal (TIOCSTI)");
    }
    return Status::Ok();
  }
  termios saved{};
  if (::tcgetattr(tty, &saved) != 0) return Status::Errno("tcgetattr");
  // ICANON stays as it is (switching it would end the line being typed).
  termios quiet = saved;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL | ISIG | IEXTEN);
  quiet.c_iflag &= ~static_cast<tcflag_t>(INLCR | IGNCR | ICRNL | IUCLC | ISTRIP | IXON);
  if (::tcsetattr(tty, TCSANOW, &quiet) != 0) return Status::Errno("tcsetattr");
  Status st;
  for (char c : bytes) {
    if (::ioctl(tty, TIOCSTI, &c) != 0) {
      st = Status::Errno("put input back into the terminal (TIOCSTI)");
      break;
    }
  }
  if (::tcsetattr(tty, TCSANOW, &saved) != 0 && st.ok()) st = Status::Errno("tcsetattr");
  return st;
}

}  // namespace roam
