// MemberDirectory and MemberTable: who a node knows, in little memory.
//
// MemberDirectory gives every member name ever heard of a small dense id
// and keeps its name and address. The daemon's Swim owns one; the simulator
// shares one among all its nodes, since names and addresses are the same for
// all of them (REQUIRES then: a member's address never changes, which holds
// in the simulator). Ids are never reused; a directory grows with the number
// of distinct names, not with time.
//
// MemberTable is one node's view: a flat vector of 48-byte rows indexed by
// id, empty slots (state MEMBER_STATE_UNSPECIFIED) for members it does not
// know. It reads like the std::map<std::string, Member> it replaced: find,
// at, count, size, and iteration as (name, member) pairs in id order.
// References to rows and iterators are invalidated by Insert (the vector may
// grow). Not thread-safe.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cluster/member.h"

namespace roam {

using MemberId = uint32_t;
constexpr MemberId kNoMember = UINT32_MAX;

class MemberDirectory {
 public:
  // The id of `name`, new if it was never seen. A non-empty `address`
  // replaces the one held.
  MemberId Intern(const std::string& name, const std::string& address);
  MemberId Find(std::string_view name) const;  // kNoMember if never seen
  const std::string& name(MemberId id) const { return names_[id]; }
  const std::string& address(MemberId id) const { return addresses_[id]; }
  void SetAddress(MemberId id, const std::string& address) { addresses_[id] = address; }
  size_t size() const { return names_.size(); }

 private:
  std::deque<std::string> names_, addresses_;  // a deque: references stay valid as it grows
  std::unordered_map<std::string_view, MemberId> ids_;  // views into names_
};

class MemberTable {
 public:
  explicit MemberTable(std::shared_ptr<MemberDirectory> directory);

  // ---- read side (what callers of Swim::members() see) ----
  class const_iterator {
   public:
    using value_type = std::pair<const std::string&, const Member&>;
    struct Arrow {
      value_type pair;
      const value_type* operator->() const { return &pair; }
    };
    const_iterator(const MemberTable* t, size_t i) : t_(t), i_(i) { Skip(); }
    value_type operator*() const { return {t_->rows_[i_].name, t_->rows_[i_]}; }
    Arrow operator->() const { return Arrow{**this}; }
    const_iterator& operator++() {
      ++i_;
      Skip();
      return *this;
    }
    bool operator==(const const_iterator& o) const { return i_ == o.i_; }
    bool operator!=(const const_iterator& o) const { return i_ != o.i_; }

   private:
    void Skip() {
      while (i_ < t_->rows_.size() && t_->rows_[i_].state == pb::MEMBER_STATE_UNSPECIFIED) ++i_;
    }
    const MemberTable* t_;
    size_t i_;
  };
  const_iterator begin() const { return {this, 0}; }
  const_iterator end() const { return {this, rows_.size()}; }
  const_iterator find(std::string_view name) const;
  // REQUIRES: the member is known (throws std::out_of_range otherwise, as
  // std::map::at did).
  const Member& at(std::string_view name) const;
  size_t count(std::string_view name) const { return find(name) != end(); }
  size_t size() const { return known_; }

  // ---- write side (Swim) ----
  MemberDirectory& directory() { return *dir_; }
  const MemberDirectory& directory() const { return *dir_; }
  // The row of a known member, or nullptr.
  Member* Get(MemberId id) { return id < rows_.size() && Known(rows_[id]) ? &rows_[id] : nullptr; }
  const Member* Get(MemberId id) const { return id < rows_.size() && Known(rows_[id]) ? &rows_[id] : nullptr; }
  // REQUIRES: id is known.
  Member& Row(MemberId id) { return rows_[id]; }
  const Member& Row(MemberId id) const { return rows_[id]; }
  // Makes `id` known with `state` (not UNSPECIFIED); returns its row.
  Member& Insert(MemberId id, MemberState state);
  // Forgets a member: its row becomes an empty slot.
  void Erase(MemberId id);
  // Reserves rows for every id the directory holds now (a warm start).
  void Reserve();

 private:
  static bool Known(const Member& m) { return m.state != pb::MEMBER_STATE_UNSPECIFIED; }

  std::shared_ptr<MemberDirectory> dir_;
  std::vector<Member> rows_;  // by id
  size_t known_ = 0;
};

}  // namespace roam
