#include "wire/terminal.h"

#include <sys/ioctl.h>
#include <termios.h>

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

}  // namespace roam
