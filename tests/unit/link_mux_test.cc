// Sessions over one node link (src/node/link_mux.h, src/node/link_pool.h),
// on real loopback TCP: frames of a session arrive whole and in order, a
// paused session stops only its own sender, a small frame is not held behind
// a stream of large ones, the end of the connection ends every session, and
// two roamds share one connection whichever side opens a session.
#include <gtest/gtest.h>

#include <asio.hpp>
#include <string>
#include <vector>

#include "link.pb.h"
#include "node/link_mux.h"
#include "node/link_pool.h"

namespace roam {
namespace {

pb::LinkFrame Data(const std::string& s) {
  pb::LinkFrame f;
  f.mutable_stream()->set_stdout_data(s);
  return f;
}

// Two muxes over one loopback connection, no cipher: `a` dialled.
struct Pair {
  asio::io_context io;
  std::shared_ptr<LinkMux> a, b;
  std::vector<std::shared_ptr<LinkSession>> b_sessions, a_sessions;  // opened by the other side
  std::string a_end, b_end;

  Pair() {
    asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
    asio::ip::tcp::socket sa(io), sb(io);
    sa.connect(acc.local_endpoint());
    acc.accept(sb);
    a = std::make_shared<LinkMux>(std::make_shared<LinkConnection>(std::move(sa)), LinkPeer{"b", ""}, true);
    b = std::make_shared<LinkMux>(std::make_shared<LinkConnection>(std::move(sb)), LinkPeer{"a", ""}, false);
    a->Start([this](std::shared_ptr<LinkSession> s, const std::string&) { a_sessions.push_back(s); },
             [this](const std::string& why) { a_end = why; });
    b->Start([this](std::shared_ptr<LinkSession> s, const std::string&) { b_sessions.push_back(s); },
             [this](const std::string& why) { b_end = why; });
  }
  // Lets the loop run until `done` or 10 s.
  template <typename F>
  bool RunUntil(F done) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < until) {
      if (io.stopped()) io.restart();  // ran out of work once: a later post must still run
      io.run_for(std::chrono::milliseconds(5));
    }
    return done();
  }
};

// Collects what one session receives.
struct Sink {
  std::vector<std::string> got;
  std::string closed;
  void Attach(const std::shared_ptr<LinkSession>& s) {
    s->set_handlers([this](pb::LinkFrame& f) { got.push_back(f.stream().stdout_data()); },
                    [this](const std::string& why) { closed = why; });
  }
};

TEST(LinkMux, SessionsFromEitherSideCarryTheirFramesInOrder) {
  Pair p;
  Sink at_b1, at_b2, at_a;
  auto s1 = p.a->Open();
  auto s2 = p.a->Open();
  s2->Send(Data("two-first"));  // numbered first, though opened second
  s1->Send(Data("one-first"));
  std::string big(3 << 20, 'x');
  big[12345] = 'y';
  s1->Send(Data(big));
  s1->Send(Data("one-last"));
  s1->Close();
  auto back = p.b->Open();
  back->Send(Data("from b"));
  ASSERT_TRUE(p.RunUntil([&] {
    if (p.b_sessions.size() == 2 && at_b1.got.empty() && at_b2.got.empty()) {
      at_b2.Attach(p.b_sessions[0]);  // the first numbered is s2
      at_b1.Attach(p.b_sessions[1]);
    }
    if (p.a_sessions.size() == 1 && at_a.got.empty() && at_a.closed.empty()) at_a.Attach(p.a_sessions[0]);
    return at_b1.closed.size() && at_b2.got.size() == 1 && at_a.got.size() == 1;
  }));
  ASSERT_EQ(at_b1.got.size(), 3u);
  EXPECT_EQ(at_b1.got[0], "one-first");
  EXPECT_EQ(at_b1.got[1], big);
  EXPECT_EQ(at_b1.got[2], "one-last");
  EXPECT_EQ(at_b1.closed, "connection closed by peer");
  EXPECT_EQ(at_b2.got[0], "two-first");
  EXPECT_TRUE(at_b2.closed.empty());
  EXPECT_EQ(at_a.got[0], "from b");
  EXPECT_EQ(p.b_sessions[0]->id() % 2, 1u);  // a dialled: odd
  EXPECT_EQ(p.a_sessions[0]->id() % 2, 0u);
  EXPECT_EQ(p.b->sessions(), 2u);  // s1 closed; s2 and back open
  EXPECT_EQ(p.a->sessions(), 2u);
}

TEST(LinkMux, APausedSessionHoldsBackOnlyItsOwnSender) {
  Pair p;
  Sink slow, fast;
  auto bulk = p.a->Open();
  auto keys = p.a->Open();
  const std::string mib(1 << 20, 'p');
  const int kFrames = 32;  // 4x the window
  for (int i = 0; i < kFrames; i++) bulk->Send(Data(mib));
  ASSERT_TRUE(p.RunUntil([&] { return p.b_sessions.size() == 1; }));
  slow.Attach(p.b_sessions[0]);
  p.b_sessions[0]->Pause();
  p.io.run_for(std::chrono::milliseconds(200));
  // The sender stopped at the window: most of it waits at a, not at b.
  EXPECT_GE(bulk->queued_bytes(), (kFrames << 20) - LinkSession::kWindow - (2 << 20));
  EXPECT_TRUE(slow.got.empty());
  keys->Send(Data("k"));
  ASSERT_TRUE(p.RunUntil([&] {
    if (p.b_sessions.size() == 2 && fast.got.empty()) fast.Attach(p.b_sessions[1]);
    return fast.got.size() == 1;
  }));
  EXPECT_EQ(fast.got[0], "k");
  EXPECT_TRUE(slow.got.empty());
  p.b_sessions[0]->Resume();
  ASSERT_TRUE(p.RunUntil([&] { return slow.got.size() == static_cast<size_t>(kFrames); }));
  EXPECT_EQ(bulk->queued_bytes(), 0u);
}

TEST(LinkMux, ASmallFrameIsNotHeldBehindAStreamOfLargeOnes) {
  Pair p;
  std::vector<std::string> order;  // at b, across both sessions, as they arrive
  p.b->Start(
      [&order](std::shared_ptr<LinkSession> s, const std::string&) {
        s->set_handlers([&order](pb::LinkFrame& f) { order.push_back(f.stream().stdout_data()); }, nullptr);
      },
      nullptr);
  auto pages = p.a->Open();
  auto keys = p.a->Open();
  const std::string mib(1 << 20, 'p');
  for (int i = 0; i < 6; i++) pages->Send(Data(mib));  // within the window: no credit wait
  keys->Send(Data("keystroke"));
  ASSERT_TRUE(p.RunUntil([&] { return order.size() == 7; }));
  size_t at = std::find(order.begin(), order.end(), "keystroke") - order.begin();
  // Taken in turn: behind the page being written and at most one more.
  EXPECT_LE(at, 2u) << "the keystroke came after " << at << " pages";
}

// A producer that pumps on on_drained (the pre-copy sender) must not be
// re-entered while it hands over a batch: that once let it read the next
// round's pages before the round ended, and the target kept stale pages.
TEST(LinkMux, OnDrainedRunsLaterNeverInsideSend) {
  Pair p;
  auto s = p.a->Open();
  bool inside_send = false;
  int drained = 0, drained_inside = 0;
  s->set_on_drained([&] {
    drained++;
    if (inside_send) drained_inside++;
  });
  for (int i = 0; i < 3; i++) {
    inside_send = true;
    s->Send(Data("small"));  // the connection has room: handed over at once
    inside_send = false;
    p.io.run_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(drained_inside, 0);
  EXPECT_EQ(drained, 3);
}

TEST(LinkMux, TheConnectionsEndEndsEverySessionWithItsReason) {
  Pair p;
  Sink x, y, here;
  auto s1 = p.a->Open();
  auto s2 = p.a->Open();
  here.Attach(s1);
  s1->Send(Data("1"));
  s2->Send(Data("2"));
  ASSERT_TRUE(p.RunUntil([&] {
    if (p.b_sessions.size() == 2 && x.got.empty()) {
      x.Attach(p.b_sessions[0]);
      y.Attach(p.b_sessions[1]);
    }
    return x.got.size() == 1 && y.got.size() == 1;
  }));
  p.a->Close("shut down");
  ASSERT_TRUE(p.RunUntil([&] { return !x.closed.empty() && !y.closed.empty(); }));
  EXPECT_EQ(here.closed, "shut down");
  EXPECT_EQ(p.a_end, "shut down");
  EXPECT_EQ(x.closed, "connection closed by peer");
  EXPECT_EQ(p.b_end, "connection closed by peer");
  EXPECT_TRUE(p.b->closed());
  // A session of an ended connection sends nothing and says so.
  s2->Send(Data("late"));
  EXPECT_EQ(s2->queued_bytes(), 0u);
  // One opened on it after its end is told so, not left waiting.
  auto late = p.a->Open();
  std::string late_end;
  late->set_handlers([](pb::LinkFrame&) {}, [&late_end](const std::string& why) { late_end = why; });
  late->Send(Data("too late"));
  EXPECT_EQ(late_end, "") << "never inside Send";
  ASSERT_TRUE(p.RunUntil([&] { return !late_end.empty(); }));
  EXPECT_EQ(late_end, "the node link with b ended");
  EXPECT_EQ(p.a->sessions(), 0u);
}

TEST(LinkMux, LateFramesOfASessionClosedHereAreDropped) {
  Pair p;
  Sink first;
  auto s = p.a->Open();
  s->Send(Data("a"));
  ASSERT_TRUE(p.RunUntil([&] { return p.b_sessions.size() == 1; }));
  // b closes it at once; what a sends meanwhile must not open a new one.
  p.b_sessions[0]->Close("no thanks", false);
  s->Send(Data("b"));
  Sink at_a;
  at_a.Attach(s);
  ASSERT_TRUE(p.RunUntil([&] { return !at_a.closed.empty(); }));
  p.io.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(p.b_sessions.size(), 1u);
  EXPECT_EQ(p.b->sessions(), 0u);
  EXPECT_EQ(at_a.closed, "connection closed by peer");
  // A new session still works.
  auto t = p.a->Open();
  t->Send(Data("c"));
  ASSERT_TRUE(p.RunUntil([&] {
    if (p.b_sessions.size() == 2 && first.got.empty()) first.Attach(p.b_sessions[1]);
    return first.got.size() == 1;
  }));
  EXPECT_EQ(first.got[0], "c");
}

// A peer that ignores its window would fill the receiver's memory while a
// session is paused: the connection ends instead.
TEST(LinkMux, APeerSendingBeyondItsWindowLosesTheConnection) {
  asio::io_context io;
  asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket sa(io), sb(io);
  sa.connect(acc.local_endpoint());
  acc.accept(sb);
  auto raw = std::make_shared<LinkConnection>(std::move(sa));
  raw->Start([](pb::LinkFrame&) {}, [](const std::string&) {});
  auto b = std::make_shared<LinkMux>(std::make_shared<LinkConnection>(std::move(sb)), LinkPeer{"a", ""}, false);
  std::string end;
  b->Start([](std::shared_ptr<LinkSession> s, const std::string&) { s->Pause(); },
           [&end](const std::string& why) { end = why; });
  pb::LinkFrame f = Data(std::string(1 << 20, 'z'));
  f.set_session(1);
  const int within = LinkSession::kWindow >> 20;
  for (int i = 0; i < within; i++) raw->Send(f);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (raw->queued_bytes() > 0 && std::chrono::steady_clock::now() < until) io.run_for(std::chrono::milliseconds(5));
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(end, "") << "a window's worth is allowed";
  for (int i = 0; i < 20; i++) raw->Send(f);
  while (end.empty() && std::chrono::steady_clock::now() < until) io.run_for(std::chrono::milliseconds(5));
  EXPECT_EQ(end, "node link: a sent beyond its window");
}

uint16_t FreePort() {
  asio::io_context io;
  asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
  return acc.local_endpoint().port();
}

TEST(LinkPool, TwoNodesShareOneConnectionWhicheverSideOpens) {
  asio::io_context io;
  const uint16_t pa = FreePort(), pb = FreePort();
  const std::string addr_a = "127.0.0.1:" + std::to_string(pa), addr_b = "127.0.0.1:" + std::to_string(pb);
  std::vector<std::string> got_a, got_b;
  auto echo_into = [](std::vector<std::string>* got) {
    return [got](std::shared_ptr<LinkSession> s, const std::string& peer) {
      s->set_handlers(
          [got, s, peer](pb::LinkFrame& f) {
            got->push_back(peer + ":" + f.stream().stdout_data());
            s->Send(Data("ok"));
            s->Close();
          },
          nullptr);
    };
  };
  LinkPool a(io, LinkIdentity{"c", "na", std::nullopt, addr_a}, echo_into(&got_a));
  LinkPool b(io, LinkIdentity{"c", "nb", std::nullopt, addr_b}, echo_into(&got_b));
  ASSERT_TRUE(a.Listen("127.0.0.1", pa).ok());
  ASSERT_TRUE(b.Listen("127.0.0.1", pb).ok());
  int answers = 0;
  auto ask = [&](LinkPool& from, const std::string& to, const std::string& what) {
    from.Open(to, [&, what](Result<std::shared_ptr<LinkSession>> r, const std::string&) {
      ASSERT_TRUE(r.ok()) << r.status().message();
      auto s = *r;
      s->set_handlers(
          [&answers](pb::LinkFrame& f) {
            if (f.stream().stdout_data() == "ok") answers++;
          },
          nullptr);
      s->Send(Data(what));
    });
  };
  // Two at once from a (one dial), then b towards a: the same connection.
  ask(a, addr_b, "1");
  ask(a, addr_b, "2");
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (answers < 2 && std::chrono::steady_clock::now() < until) io.run_for(std::chrono::milliseconds(5));
  ask(b, addr_a, "3");
  while (answers < 3 && std::chrono::steady_clock::now() < until) io.run_for(std::chrono::milliseconds(5));
  ASSERT_EQ(answers, 3);
  EXPECT_EQ(got_b, (std::vector<std::string>{"na:1", "na:2"}));
  EXPECT_EQ(got_a, (std::vector<std::string>{"nb:3"}));
  EXPECT_EQ(a.connections(), 1u);
  EXPECT_EQ(b.connections(), 1u);
  // Membership declares b gone: the connection ends; the next session dials again.
  a.Drop(addr_b, "it was declared dead");
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_EQ(a.connections(), 0u);
  ask(a, addr_b, "4");
  while (answers < 4 && std::chrono::steady_clock::now() < until) io.run_for(std::chrono::milliseconds(5));
  EXPECT_EQ(answers, 4);
  EXPECT_EQ(a.connections(), 1u);
}

}  // namespace
}  // namespace roam
