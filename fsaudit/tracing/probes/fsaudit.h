// The record the probe sends to user space: struct event and its constants.
//
// Included by fsaudit.c (cpython.h uses them too). fsaudit/tracing/record.py
// holds the user side, one name for each of these; tests/test_ringbuf.py
// compiles this header and compares every #define and every member's offset
// and size with it.

#define PATH_LEN 256

// Pseudo syscall numbers for events that are not one syscall.
#define EV_WRITE_RUN  -1   // aggregated successful full writes (or sendto: sends) on one fd
#define EV_FORK       -2
#define EV_EXEC       -3
#define EV_EXIT       -4
#define EV_STDIO_LOST -5   // bytes still in a stdio buffer when the process dies
#define EV_AUXV       -6   // --stacks: where exec put the program and its loader
#define EV_PYCODE     -7   // --stacks: a CPython code object's names and line table (cpython.h)
#define EV_DATA       -8   // crash recording (CAPTURE_DATA): a chunk of a write's buffer

// --stacks: a user stack is the words at the stack pointer (where the
// caller's return address is, which a frame-pointer walk skips when libc's
// syscall wrapper keeps no frame), then the frame-pointer chain.
#define STACK_SCAN 32
#define STACK_DEPTH 16
#define STACK_WORDS (STACK_SCAN + STACK_DEPTH)
#define PY_FRAMES 8        // CPython frames per stack, innermost first (a power of 2)

struct event {
    u64 ts;          // ktime ns at syscall exit (runs: last call)
    u64 ts_first;    // syscalls: entry time (writes, sendto: exit); runs: first call's exit
    u32 pid;         // tgid
    u32 tid;
    s32 nr;          // syscall number or EV_*
    u32 epoch;
    s64 ret;
    u64 args[6];     // runs: fd, calls, bytes, max size, syscall nr
#ifdef STACKS
    u64 stack[STACK_WORDS];
    u64 py_code[PY_FRAMES];    // CPython: code object addresses, 0-terminated
    u32 py_lasti[PY_FRAMES];   // and each frame's instruction index
#endif
    // Last: a record ends where its data does (see submit in fsaudit.c), so
    // an event without paths crosses the ring buffer as a sixth of its full size.
    char path[PATH_LEN];
    char path2[PATH_LEN];
};
