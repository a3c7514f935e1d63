// Capabilities: the bounding set, then effective/permitted/inheritable, then ambient.
#pragma once

#include <cstdint>
#include <vector>

#include "core/spec/config.h"

namespace pieces::linux_ {

/// A set of capabilities as a bit mask (bit N = capability N).
uint64_t cap_mask(const std::vector<int>& caps);

/// Drops every capability not in `keep` from the bounding set. Needs CAP_SETPCAP: call before
/// the uid changes.
void drop_bounding_set(const std::vector<int>& keep);

/// Sets effective, permitted and inheritable, then raises the ambient set. Call after the uid
/// change (with PR_SET_KEEPCAPS held across it).
void apply_capability_sets(const spec::capabilities& caps);

/// The highest capability the running kernel knows (/proc/sys/kernel/cap_last_cap).
int kernel_last_cap();

}  // namespace pieces::linux_
