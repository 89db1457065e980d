#include "cluster/member_table.h"

#include <stdexcept>

namespace roam {

MemberId MemberDirectory::Intern(const std::string& name, const std::string& address) {
  if (auto it = ids_.find(name); it != ids_.end()) {
    if (!address.empty() && addresses_[it->second] != address) addresses_[it->second] = address;
    return it->second;
  }
  const auto id = static_cast<MemberId>(names_.size());
  names_.push_back(name);
  addresses_.push_back(address);
  ids_.emplace(std::string_view(names_.back()), id);
  return id;
}

MemberId MemberDirectory::Find(std::string_view name) const {
  auto it = ids_.find(name);
  return it == ids_.end() ? kNoMember : it->second;
}

MemberTable::MemberTable(std::shared_ptr<MemberDirectory> directory) : dir_(std::move(directory)) {}

MemberTable::const_iterator MemberTable::find(std::string_view name) const {
  const MemberId id = dir_->Find(name);
  if (id == kNoMember || !Get(id)) return end();
  return {this, id};
}

const Member& MemberTable::at(std::string_view name) const {
  const MemberId id = dir_->Find(name);
  const Member* m = id == kNoMember ? nullptr : Get(id);
  if (!m) throw std::out_of_range("no member named " + std::string(name));
  return *m;
}

void MemberTable::Reserve() {
  rows_.reserve(dir_->size());
  while (rows_.size() < dir_->size()) {
    const auto id = static_cast<MemberId>(rows_.size());
    rows_.emplace_back(dir_->name(id), dir_->address(id));
  }
}

Member& MemberTable::Insert(MemberId id, MemberState state) {
  while (rows_.size() <= id) {
    const auto next = static_cast<MemberId>(rows_.size());
    rows_.emplace_back(dir_->name(next), dir_->address(next));
  }
  Member& m = rows_[id];
  if (!Known(m)) ++known_;
  m.state = state;
  return m;
}

void MemberTable::Erase(MemberId id) {
  if (id >= rows_.size() || !Known(rows_[id])) return;
  Member& m = rows_[id];
  m.state = pb::MEMBER_STATE_UNSPECIFIED;
  m.incarnation = 0;
  m.state_since_ms = 0;
  m.load.reset();
  --known_;
}

}  // namespace roam
