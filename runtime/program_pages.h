// Resident memory of the per-container processes (monitor and init).
#pragma once

namespace flotilla::runtime {

// Unmaps, from this process only, the pages of its own program's text and
// constants that it has mapped so far, once its start-up code has run: a
// monitor and its init then map only what their wait loops touch again.
// The pages stay in the page cache (shared by every monitor), but pages no
// process maps are the first the kernel reclaims on a 512 MB device, and
// each process's RSS leaves out start-up code (JSON parsing, rootfs
// set-up) it will not run again. Free heap pages go back too. Read-only mappings with private
// changes (relocated data made read-only after start, RELRO) are left alone, as is everything
// writable. Best effort: any failure leaves the mappings as they were.
void DropProgramPages();

}  // namespace flotilla::runtime
