// fsaudit kernel side: syscall tracing of one process tree.
//
// One file of about 800 lines on purpose: bcc compiles one translation unit per
// load, the programs share their maps and inline helpers, and the verifier sees
// each program whole; the record and its constants are already apart in
// fsaudit.h. In order: maps, record helpers, write runs, stdio uprobes,
// `fsaudit crash`'s data capture (compiled only with CAPTURE_DATA),
// sys_enter/sys_exit, then the sched and signal tracepoints.
//
// Reads only tracepoint arguments, pt_regs (x86-64 ABI, stable) and user
// memory through helpers: the kernel headers on the build host belong to
// another kernel, so no kernel struct field may be read.
// Syscall numbers only: linux/ptrace.h would bring them too, but parsing it
// doubles bcc's compile time (measured 1.5 s -> 0.76 s).
#include <asm/unistd_64.h>

// struct event and its constants, shared with user space.
#include "fsaudit.h"

#define PATH_OFFSET __builtin_offsetof(struct event, path)
#define PATH2_OFFSET __builtin_offsetof(struct event, path2)

struct inflight {
    u64 ts;
    s64 nr;
    u64 args[6];
};

struct write_run {
    u64 ts_first, ts_last;
    u64 fd, calls, bytes, size_max;
    s64 nr;
    u32 epoch;
    u32 pid;     // tgid, for user space draining runs still pending at detach
    u16 open;          // sends: begun behind a send that went out as an event (calls may be 0)
    u16 joins_past;    // sends: later ones may join past other processes' events (send_joins_run)
#ifdef STACKS
    u64 stack[STACK_WORDS];   // of the run's first write
#endif
};

// tgid -> 1 traced, 2 spawned by fsaudit and waiting for its exec.
BPF_HASH(traced, u32, u8, 65536);
// A bit per tgid that may be in `traced`: every other process's syscalls leave
// after an array lookup, which the verifier inlines, instead of a hash lookup
// (bench/bystander_floor.py). Two maps, one writer each: the probe sets and
// clears kernel_bits atomically; user space sets adopted_bits for the
// processes it adopts (attach), where a read-modify-write from user space
// would undo a bit the probe set meanwhile. A bit left set costs its pid's
// next owner the hash lookup, no more: `traced` decides.
#define PID_WORDS 65536   // PID_MAX_LIMIT (4M pids) / 64
BPF_ARRAY(kernel_bits, u64, PID_WORDS);
BPF_ARRAY(adopted_bits, u64, PID_WORDS);
BPF_HASH(inflight, u32, struct inflight, 65536);
BPF_HASH(runs, u32, struct write_run, 65536);
BPF_PERCPU_ARRAY(blank_run, struct write_run, 1);   // never written: a zeroed run, too big for the BPF stack
// Events are built here and copied into the ring buffer at their real size,
// which a ring buffer reservation (of a constant size) cannot have. Safe per
// CPU: syscall and sched tracepoints run their programs with preemption off.
BPF_PERCPU_ARRAY(event_scratch, struct event, 1);
// 0: lost events, 1: epoch, 2: tgid of the spawner (fsaudit itself),
// 3: events submitted since user space was last woken, 4: epoch of the latest
// rename or link (PUBLISHED), 5: an epoch through which user space analysed
// every event and after which no FS101 window was open (QUIET, set by user space).
BPF_ARRAY(counters, u64, 6);
#define PUBLISHED 4
#define QUIET 5
// What a send run of a traced process needs to know of the rest of it (sender_is_clean, send_joins_run).
struct process_writes {
    u64 written_ts;   // exit of its latest call that may write data, in an event or a flushed write run
    u64 synced_ts;    // entry of its latest successful durability barrier
    u32 last_epoch;   // epoch of its latest event
    u32 open_runs;    // write runs of its threads not yet flushed
};
BPF_HASH(process_writes, u32, struct process_writes, 65536);
BPF_HASH(exit_info, u32, u64, 65536);   // tgid -> (signal << 8) | code
// tid -> its EV_EXEC record, from sched_process_exec until the new image's first
// return to user space, where its argv is on its stack to be read (see report_exec).
BPF_HASH(execs, u32, struct event, 4096);
BPF_RINGBUF_OUTPUT(events, RINGBUF_PAGES);

// glibc stdio FILEs of each traced process that got a buffer (x86-64 glibc
// struct _IO_FILE offsets, a stable ABI: write_base 32, write_ptr 40, fileno 112).
#define STDIO_SLOTS 16
#define FILE_WRITE_BASE 32
#define FILE_FILENO 112
struct stdio_files {
    u64 fp[STDIO_SLOTS];
};
BPF_HASH(stdio_files, u32, struct stdio_files, 16384);

// The read helpers under other names: bcc 0.26 re-reads the kernel's symbol
// table for each call of bpf_probe_read_* it compiles (~60 ms each).
static long (*read_user)(void *dst, u32 size, const void *src) = (void *)BPF_FUNC_probe_read_user;
static long (*read_kernel)(void *dst, u32 size, const void *src) = (void *)BPF_FUNC_probe_read_kernel;
static long (*read_user_str)(void *dst, u32 size, const void *src) = (void *)BPF_FUNC_probe_read_user_str;
static long (*read_kernel_str)(void *dst, u32 size, const void *src) = (void *)BPF_FUNC_probe_read_kernel_str;

// 0: pid is not in `traced`; 1: it may be.
static __always_inline int may_be_traced(u32 pid) {
    u32 word = pid / 64;
    u64 bit = 1ULL << (pid % 64);
    u64 *k = kernel_bits.lookup(&word), *a = adopted_bits.lookup(&word);
    return (k && (*k & bit)) || (a && (*a & bit));
}

// pid's state in `traced` (0: not traced), the bitmaps asked first.
static __always_inline u8 traced_state(u32 pid) {
    if (!may_be_traced(pid)) return 0;
    u8 *state = traced.lookup(&pid);
    return state ? *state : 0;
}

// Bit first: a process in `traced` always has its bit.
static __always_inline void mark_traced(u32 pid, u8 state) {
    u32 word = pid / 64;
    u64 *k = kernel_bits.lookup(&word);
    if (k) __sync_fetch_and_or(k, 1ULL << (pid % 64));
    traced.update(&pid, &state);
}

static __always_inline void unmark_traced(u32 pid) {
    traced.delete(&pid);
    u32 word = pid / 64;
    u64 *k = kernel_bits.lookup(&word);
    if (k) __sync_fetch_and_and(k, ~(1ULL << (pid % 64)));
}

static __always_inline void count_lost(void) {
    int k = 0;
    u64 *v = counters.lookup(&k);
    if (v) __sync_fetch_and_add(v, 1);
}

static __always_inline u32 bump_epoch(void) {
    int k = 1;
    u64 *v = counters.lookup(&k);
    if (!v) return 0;
    return __sync_fetch_and_add(v, 1) + 1;
}

static __always_inline u32 current_epoch(void) {
    int k = 1;
    u64 *v = counters.lookup(&k);
    return v ? *v : 0;
}

static __always_inline u64 counter(int k) {
    u64 *v = counters.lookup(&k);
    return v ? *v : 0;
}

// A run of sends is judged as its first send (FS106) and counts as its sends
// (FS101's windows) in the place of the event it began behind. A run flushed
// late (its thread sends, then waits in a read) goes out after events that came
// after its first send. When one of them closed an FS101 window, the window
// would miss the send. So while a window may be open (one opens at a rename,
// PUBLISHED; user space moves QUIET past it once none is open) a run begins
// with a send that goes out as an event of its own, in its place.
static __always_inline int window_may_be_open(void) {
    return counter(PUBLISHED) > counter(QUIET);
}

// Whether the process has all its data past a barrier: FS106 judges a send by
// what its own process left unsynced, which no other process can add to.
static __always_inline int sender_is_clean(u32 pid) {
    struct process_writes *p = process_writes.lookup(&pid);
    return !p || (p->open_runs == 0 && p->written_ts <= p->synced_ts);
}

// The later sends of a run whose first send went out in its place, or was sent
// clean while no window was open, decide nothing the first did not: they join
// it past other processes' events (a PostgreSQL backend's replies between two
// commits while the other backends write and fdatasync the WAL: one record
// instead of one a reply), until the sender's own process makes an event or
// begins a write run, or a rename or link publishes a file (a send after it may
// be the first in its window).
static __always_inline int send_joins_run(u32 pid, struct write_run *r) {
    struct process_writes *p = process_writes.lookup(&pid);
    return r->joins_past && (!p || (p->open_runs == 0 && p->last_epoch <= r->epoch)) &&
           (u32)counter(PUBLISHED) <= r->epoch;
}

// Waking user space per event costs more than handling the event: wake it
// once per batch; between batches it polls with a short timeout.
#define WAKEUP_BATCH 1024

// Sends the first size bytes of e (from reserve()).
static __always_inline void submit(struct event *e, u64 size) {
    int k = 3;
    u64 *pending = counters.lookup(&k);
    u64 flags = BPF_RB_NO_WAKEUP;
    if (pending && __sync_fetch_and_add(pending, 1) >= WAKEUP_BATCH) {
        *pending = 0;
        flags = BPF_RB_FORCE_WAKEUP;
    }
    if (size > sizeof(struct event)) size = sizeof(struct event);
    if (events.ringbuf_output(e, size, flags) != 0) count_lost();
}

// This CPU's event under construction; nothing else may be built until it is submitted.
static __always_inline struct event *reserve(u32 pid, u32 tid, s32 nr) {
    int zero = 0;
    struct event *e = event_scratch.lookup(&zero);
    if (!e) return 0;
    e->pid = pid;
    e->tid = tid;
    e->nr = nr;
    e->path[0] = 0;
    e->path2[0] = 0;
#ifdef STACKS
    __builtin_memset(e->stack, 0, sizeof(e->stack));
    __builtin_memset(e->py_code, 0, sizeof(e->py_code));
    __builtin_memset(e->py_lasti, 0, sizeof(e->py_lasti));
#endif
    return e;
}

#ifdef STACKS
// The calling thread's user stack (regs: its pt_regs), see STACK_SCAN.
static __always_inline void capture_stack(void *ctx, u64 regs, u64 *out) {
    u64 sp = 0;
    read_kernel(&sp, sizeof(sp), (void *)(regs + 19 * 8));   // pt_regs->sp
    if (read_user(out, STACK_SCAN * 8, (void *)sp) != 0)
        __builtin_memset(out, 0, STACK_SCAN * 8);
    // Zero-fills what it does not write, and all of it on failure.
    bpf_get_stack(ctx, &out[STACK_SCAN], STACK_DEPTH * 8, BPF_F_USER_STACK);
}

#include "cpython.h"
#endif

static __always_inline void flush_run(u32 pid, u32 tid) {
    struct write_run *r = runs.lookup(&tid);
    if (!r) return;
    r->open = 0;
    if (r->calls == 0) return;
    struct event *e = reserve(pid, tid, EV_WRITE_RUN);
    if (e) {
        e->ts = r->ts_last;
        e->ts_first = r->ts_first;
        e->epoch = r->epoch;
        e->ret = r->bytes;
        e->args[0] = r->fd;
        e->args[1] = r->calls;
        e->args[2] = r->bytes;
        e->args[3] = r->size_max;
        e->args[4] = r->nr;
        e->args[5] = 0;
#ifdef STACKS
        __builtin_memcpy(e->stack, r->stack, sizeof(r->stack));
#endif
        submit(e, PATH_OFFSET);
    }
    if (r->nr != __NR_sendto) {
        struct process_writes *p = process_writes.lookup(&pid);
        if (p) {
            if (p->open_runs) __sync_fetch_and_add(&p->open_runs, -1);   // its threads run on every CPU
            if (r->ts_last > p->written_ts) p->written_ts = r->ts_last;
        }
    }
    r->calls = 0;
}

static __always_inline int is_write(s64 nr) {
    return nr == __NR_write || nr == __NR_pwrite64 || nr == __NR_writev ||
           nr == __NR_pwritev || nr == __NR_pwritev2;
}

// Calls decoded at their exit from the registers they leave as they were:
// their entry costs nothing and needs no slot (their event's ts_first is their
// exit). The other calls of is_interesting are read at entry.
static __always_inline int decoded_at_exit(s64 nr) {
    return is_write(nr) || nr == __NR_sendto;
}

// Syscalls whose events fsaudit needs; everything else is ignored at entry.
static __always_inline int is_interesting(s64 nr) {
    switch (nr) {
    case __NR_write: case __NR_pwrite64: case __NR_writev: case __NR_pwritev:
    case __NR_pwritev2: case __NR_open: case __NR_openat: case __NR_openat2:
    case __NR_creat: case __NR_close: case __NR_close_range: case __NR_dup:
    case __NR_dup2: case __NR_dup3: case __NR_fcntl: case __NR_sendfile:
    case __NR_copy_file_range: case __NR_splice: case __NR_fallocate:
    case __NR_ftruncate: case __NR_truncate: case __NR_fsync:
    case __NR_fdatasync: case __NR_sync_file_range: case __NR_syncfs:
    case __NR_sync: case __NR_msync: case __NR_mmap: case __NR_munmap:
    case __NR_rename: case __NR_renameat: case __NR_renameat2: case __NR_link:
    case __NR_linkat: case __NR_symlink: case __NR_symlinkat: case __NR_unlink:
    case __NR_unlinkat: case __NR_mkdir: case __NR_mkdirat: case __NR_rmdir:
    case __NR_mknod: case __NR_mknodat:
    case __NR_chdir: case __NR_fchdir: case __NR_socket: case __NR_accept:
    case __NR_accept4: case __NR_socketpair: case __NR_pipe: case __NR_pipe2:
    case __NR_sendto: case __NR_sendmsg: case __NR_sendmmsg: case __NR_bind:
    case __NR_io_uring_setup: case __NR_io_setup: case __NR_io_submit: case __NR_memfd_create:
    case __NR_clone: case __NR_clone3: case __NR_fork: case __NR_vfork:
    case __NR_exit_group:
        return 1;
    }
    return 0;
}

// Calls after which the process may hold data it has not synced (sender_is_clean),
// whatever the fd: the probe cannot tell a file from a socket.
static __always_inline int may_write_data(s64 nr, u64 *args) {
    switch (nr) {
    case __NR_sendfile: case __NR_copy_file_range: case __NR_splice: case __NR_truncate:
    case __NR_ftruncate: case __NR_fallocate: case __NR_io_submit:
        return 1;
    case __NR_mmap:
        return (args[2] & 2) && (args[3] & 1);   // PROT_WRITE, MAP_SHARED
    }
    return is_write(nr);
}

// A durability barrier of the calling process (FS106's; an O_SYNC write is one too,
// which the probe cannot tell: it counts as a write).
static __always_inline int is_barrier(s64 nr, s64 ret, u64 *args) {
    if (nr == __NR_sync) return 1;
    if (ret != 0) return 0;
    return nr == __NR_fsync || nr == __NR_fdatasync || nr == __NR_syncfs ||
           (nr == __NR_msync && (args[2] & 4));   // MS_SYNC
}

// The process made an event: what sender_is_clean and send_joins_run ask of it.
static __always_inline void note_process_event(u32 pid, s64 nr, s64 ret, struct inflight *in, u64 ts, u32 epoch) {
    struct process_writes zero = {};
    struct process_writes *p = process_writes.lookup_or_try_init(&pid, &zero);
    if (!p) return;
    p->last_epoch = epoch;
    if (may_write_data(nr, in->args)) p->written_ts = ts;
    else if (is_barrier(nr, ret, in->args)) p->synced_ts = in->ts;   // its entry: an older write is covered
    if (nr == __NR_rename || nr == __NR_renameat || nr == __NR_renameat2 || nr == __NR_link ||
        nr == __NR_linkat) {
        int k = PUBLISHED;
        u64 *published = counters.lookup(&k);
        if (published) *published = epoch;
    }
}

// Which arguments are user-space path strings: (first << 4) | second, 0xf = none.
static __always_inline int path_args(s64 nr) {
    switch (nr) {
    case __NR_open: case __NR_creat: case __NR_truncate: case __NR_unlink:
    case __NR_mkdir: case __NR_rmdir: case __NR_chdir: case __NR_mknod:
        return 0x0f;
    case __NR_openat: case __NR_openat2: case __NR_unlinkat: case __NR_mkdirat:
    case __NR_mknodat:
        return 0x1f;
    case __NR_rename: case __NR_link: case __NR_symlink:
        return 0x01;
    case __NR_renameat: case __NR_renameat2: case __NR_linkat:
        return 0x13;
    case __NR_symlinkat:
        return 0x02;
    }
    return 0xff;
}

// A FILE gets its buffer (first read or write through it): remember it.
int on_file_doallocate(void *ctx) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (traced_state(pid) != 1) return 0;
    u64 fp = ((u64 *)ctx)[14];   // pt_regs di: the FILE *
    struct stdio_files zero = {};
    struct stdio_files *files = stdio_files.lookup_or_try_init(&pid, &zero);
    if (!files) {
        count_lost();
        return 0;
    }
    #pragma unroll
    for (int i = 0; i < STDIO_SLOTS; i++) {
        if (files->fp[i] == fp) return 0;
        if (files->fp[i] == 0) {
            files->fp[i] = fp;
            return 0;
        }
    }
    return 0;   // more FILEs than slots: the rest go unwatched
}

// fclose frees the FILE: forget it before its memory is reused.
int on_fclose(void *ctx) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct stdio_files *files = stdio_files.lookup(&pid);
    if (!files) return 0;
    u64 fp = ((u64 *)ctx)[14];
    #pragma unroll
    for (int i = 0; i < STDIO_SLOTS; i++) {
        if (files->fp[i] == fp) files->fp[i] = 1;   // a hole, never a FILE address
    }
    return 0;
}

// The process is dying (_exit, or a fatal signal): bytes still between a
// FILE's write_base and write_ptr were accepted by fwrite & co and never
// reached write(). One event per such FILE.
static __always_inline void report_stdio_lost(u32 pid, u32 tid) {
    struct stdio_files *files = stdio_files.lookup(&pid);
    if (!files) return;
    #pragma unroll
    for (int i = 0; i < STDIO_SLOTS; i++) {
        u64 fp = files->fp[i];
        if (fp == 0) break;
        u64 ptrs[2] = {};
        s32 fd = -1;
        if (fp == 1 || read_user(ptrs, sizeof(ptrs), (void *)(fp + FILE_WRITE_BASE)) != 0) continue;
        if (ptrs[1] <= ptrs[0] || read_user(&fd, sizeof(fd), (void *)(fp + FILE_FILENO)) != 0) continue;
        struct event *e = reserve(pid, tid, EV_STDIO_LOST);
        if (!e) continue;
        e->ts = e->ts_first = bpf_ktime_get_ns();
        e->epoch = bump_epoch();
        e->ret = 0;
        e->args[0] = fd;
        e->args[1] = ptrs[1] - ptrs[0];
        e->args[2] = fp;
        submit(e, PATH_OFFSET);
    }
    stdio_files.delete(&pid);
}

#ifdef STACKS
// At execve's return the stack pointer is at argc, then argv[], envp[] and
// the auxiliary vector: AT_ENTRY and AT_BASE say where the kernel put the
// program and its dynamic loader, which no mmap call shows.
#define AT_PHDR 3
#define AT_PHNUM 5
#define AT_BASE 7
#define AT_ENTRY 9
static __always_inline void report_auxv(struct bpf_raw_tracepoint_args *ctx, u32 pid, u32 tid) {
    u64 sp = 0, argc = 0;
    read_kernel(&sp, sizeof(sp), (void *)(ctx->args[0] + 19 * 8));
    if (read_user(&argc, sizeof(argc), (void *)sp) != 0 || argc > 65536) return;
    u64 p = sp + 8 * (argc + 2);
    for (int i = 0; i < 1024; i++) {   // envp[] up to its NULL
        u64 word = 1;
        if (read_user(&word, sizeof(word), (void *)p) != 0) return;
        p += 8;
        if (word == 0) break;
    }
    u64 aux[4] = {};   // AT_ENTRY, AT_BASE, AT_PHDR, AT_PHNUM
    for (int i = 0; i < 64; i++) {
        u64 pair[2] = {};
        if (read_user(pair, sizeof(pair), (void *)(p + i * 16)) != 0 || pair[0] == 0) break;
        if (pair[0] == AT_ENTRY) aux[0] = pair[1];
        else if (pair[0] == AT_BASE) aux[1] = pair[1];
        else if (pair[0] == AT_PHDR) aux[2] = pair[1];
        else if (pair[0] == AT_PHNUM) aux[3] = pair[1];
    }
    struct event *e = reserve(pid, tid, EV_AUXV);
    if (!e) return;
    e->ts = e->ts_first = bpf_ktime_get_ns();
    e->epoch = bump_epoch();
    e->ret = 0;
    e->args[0] = aux[0];
    e->args[1] = aux[1];
    e->args[2] = aux[2];
    e->args[3] = aux[3];
    submit(e, PATH_OFFSET);
    py_exec(pid, aux[2], aux[3]);
}
#endif

// The exec event of tid, held since sched_process_exec, goes out now: at the
// new image's first return from execve (regs: its pt_regs), with the program's
// argv. The stack pointer is at argc, then argv[] pointing at the strings,
// which the kernel laid out one after the other, the environment's after them.
// At most PATH_LEN bytes of them: args[1] argc, args[2] the bytes sent in
// path2, args[3] all of them (more than args[2]: argv was cut). regs 0: the
// process dies before returning (sched_process_exit), without its argv.
static __always_inline void report_exec(u64 regs, u32 tid) {
    struct event *e = execs.lookup(&tid);
    if (!e) return;
    u64 size = PATH2_OFFSET, sp = 0, argc = 0, first = 0, end = 0, last = 0;
    if (regs) {
        read_kernel(&sp, sizeof(sp), (void *)(regs + 19 * 8));   // pt_regs->sp
        if (read_user(&argc, sizeof(argc), (void *)sp) != 0 || argc > 65536) argc = 0;
    }
    if (argc && read_user(&first, 8, (void *)(sp + 8)) == 0 &&
        read_user(&end, 8, (void *)(sp + 8 * (argc + 2))) == 0) {   // envp[0]
        if (end == 0 && read_user(&last, 8, (void *)(sp + 8 * argc)) == 0) {
            // No environment: the strings end after the last one.
            long n = read_user_str(e->path2, PATH_LEN, (void *)last);
            end = n > 0 ? last + n : 0;
        }
        if (end > first) {
            u64 total = end - first, len = total;
            if (len > PATH_LEN) len = PATH_LEN;
            if (read_user(e->path2, len, (void *)first) == 0) {
                e->args[1] = argc;
                e->args[2] = len;
                e->args[3] = total;
                size = PATH2_OFFSET + len;
            }
        }
    }
    e->ts = bpf_ktime_get_ns();
    e->epoch = bump_epoch();
    submit(e, size);
    execs.delete(&tid);
}

// A call's number and arguments from its pt_regs (the caller takes its time);
// returns the number they hold (orig_ax: at sys_exit, the call's own). x86-64
// pt_regs from r10 to orig_ax is nine contiguous words: one read for all of
// them (r10 r9 r8 ax cx dx si di orig_ax; the arguments are di si dx r10 r8 r9).
static __always_inline s64 read_call(u64 pt_regs, struct inflight *call) {
    u64 regs[9];
    if (read_kernel(regs, sizeof(regs), (void *)(pt_regs + 7 * 8)) != 0) regs[8] = -1;
    call->nr = regs[8];
    call->args[0] = regs[7];
    call->args[1] = regs[6];
    call->args[2] = regs[5];
    call->args[3] = regs[0];
    call->args[4] = regs[2];
    call->args[5] = regs[1];
    return regs[8];
}

#ifdef CAPTURE_DATA
// fsaudit crash: the bytes each write-family call of the tree wrote, so that
// user space can rebuild every state a power cut could leave
// (fsaudit/crash/recording.py). At the call's exit, from a second program on
// sys_exit (capture_exit), as EV_DATA records of up to CAPTURE_CHUNK bytes
// (from path on), then one empty record (offset -1) that closes the call.
// One thread's calls are in order on both sides, so user space pairs them
// with the calls' events, thread by thread: args[0] fd, [1] offset in the call's bytes, [2] bytes in this
// record, [3] the call's return, [4] its number, [5] its fourth argument (the
// offset of pwrite64, pwritev, pwritev2). Bytes the chunks lack were
// not captured (past CAPTURE_CHUNKS per buffer, CAPTURE_TOTAL per trace, or
// CAPTURE_IOVS iovecs), which user space counts. Each call keeps its own
// event (no write runs: each needs its offset), and lseek, decoded at its
// exit as writes are, sends one: the position the next plain write starts at.
#define CAPTURE_CHUNK 4096
#define CAPTURE_CHUNKS 16             // per buffer: 64 KiB
#define CAPTURE_TOTAL (1ULL << 30)    // per trace
#define CAPTURE_IOVS 4               // each more adds ~90 000 verifier steps
#define FOLD_WRITES 0
BPF_ARRAY(captured, u64, 1);          // bytes sent so far
// A data record is struct event's head and the chunk from its path on.
struct data_record {
    struct event e;
    char rest[CAPTURE_CHUNK - 2 * PATH_LEN];
};
BPF_PERCPU_ARRAY(data_scratch, struct data_record, 1);

// Sends one data record; returns 1 if its bytes could not be read or sent.
// Without branches: each would double the verifier's paths through the
// chunk loop, per chunk.
static __always_inline u64 data_record(u32 pid, u32 tid, struct inflight *call, s64 ret,
                                       u64 offset, u64 len, u64 from) {
    int zero = 0;
    struct data_record *d = data_scratch.lookup(&zero);
    if (!d) return 1;
    struct event *e = &d->e;
    e->pid = pid;
    e->tid = tid;
    e->nr = EV_DATA;
    e->ts = e->ts_first = call->ts;
    e->epoch = 0;
    e->ret = ret;
    e->args[0] = call->args[0];
    e->args[1] = offset;
    e->args[2] = len;
    e->args[3] = ret;
    e->args[4] = call->nr;
    e->args[5] = call->args[3];   // pwrite64, pwritev, pwritev2: the file offset
    s64 failed = read_user(e->path, len, (void *)from);
    failed |= events.ringbuf_output(d, PATH_OFFSET + len, 0);
    return (u64)(failed | -failed) >> 63;
}

// One buffer of a call, from its offset in the call's bytes.
static __always_inline u64 capture_buffer(u32 pid, u32 tid, struct inflight *call, s64 ret,
                                          u64 at, u64 base, u64 size, u64 *sent) {
    // A masked copy is a new value to the verifier: what the loop learns of
    // its bounds at each exit does not reach the caller's copy (whose states
    // would then differ per exit, and multiply).
    u64 len = size, failed = 0;
    asm volatile("%0 &= 0x7fffffff" : "+r"(len));
    #pragma clang loop unroll(disable)
    for (u32 c = 0; c < CAPTURE_CHUNKS; c++) {
        u64 off = (u64)c * CAPTURE_CHUNK;
        if (off >= len || __sync_fetch_and_add(sent, CAPTURE_CHUNK) >= CAPTURE_TOTAL) break;
        u64 n = len - off;
        if (n > CAPTURE_CHUNK) n = CAPTURE_CHUNK;
        failed |= data_record(pid, tid, call, ret, at + off, n, base + off);
    }
    return failed;
}

// A program of its own on sys_exit (the tracer attaches it when capturing),
// verified apart from sys_exit's.
int capture_exit(struct bpf_raw_tracepoint_args *ctx) {
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32, tid = id;
    s64 ret = ctx->args[1];
    if (traced_state(pid) != 1) return 0;
    struct inflight call;
    s64 nr = read_call(ctx->args[0], &call);
    if (!is_write(nr) && nr != __NR_lseek) return 0;
    call.ts = bpf_ktime_get_ns();
    if (nr == __NR_lseek) {
        u32 epoch = bump_epoch();
        struct event *e = reserve(pid, tid, nr);
        if (!e) return 0;
        e->ts = e->ts_first = call.ts;
        e->epoch = epoch;
        e->ret = ret;
        #pragma unroll
        for (int i = 0; i < 6; i++) e->args[i] = call.args[i];
        submit(e, PATH_OFFSET);
        return 0;
    }
    int k = 0;
    u64 *sent = captured.lookup(&k);
    u64 failed = 0;
    if (sent && ret > 0) {
        if (nr == __NR_write || nr == __NR_pwrite64) {
            failed = capture_buffer(pid, tid, &call, ret, 0, call.args[1], ret, sent);
        } else {
            // Vectored: captured only when the call wrote every iovec whole
            // (short vectored writes to files are rare; user space counts the
            // call's bytes as not captured), each buffer up to the bound.
            struct { u64 base; u64 len; } iov[CAPTURE_IOVS] = {};
            u64 whole = 0;
            #pragma unroll
            for (int i = 0; i < CAPTURE_IOVS; i++) {
                if (i < call.args[2] && read_user(&iov[i], sizeof(iov[i]), (void *)(call.args[1] + i * 16)) == 0)
                    whole += iov[i].len;
            }
            if (call.args[2] <= CAPTURE_IOVS && whole == (u64)ret) {
                u64 at = 0;
                #pragma unroll
                for (int i = 0; i < CAPTURE_IOVS; i++) {
                    failed |= capture_buffer(pid, tid, &call, ret, at, iov[i].base, iov[i].len, sent);
                    at += iov[i].len;
                }
            }
        }
    }
    // The record that closes the call: empty; the bytes its chunks lack were not captured.
    if (failed | data_record(pid, tid, &call, ret, (u64)-1, 0, 0)) count_lost();
    return 0;
}
#else
#define FOLD_WRITES 1
#endif

RAW_TRACEPOINT_PROBE(sys_enter) {
    s64 nr = ctx->args[1];
    // Writes and sendto are decoded at their exit (see sys_exit): the storms' fast path.
    if (!is_interesting(nr) || decoded_at_exit(nr)) return 0;
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32, tid = id;
    if (traced_state(pid) != 1) return 0;
    struct inflight in;
    read_call(ctx->args[0], &in);   // nr: the tracepoint's, as orig_ax holds it
    in.ts = bpf_ktime_get_ns();
    if (nr == __NR_clone3) {
        // clone3 takes struct clone_args *; flags is its first member (uapi).
        u64 flags = 0;
        read_user(&flags, 8, (void *)in.args[0]);
        in.args[0] = flags;
    }
    if (nr == __NR_exit_group) {
        u64 code = in.args[0] & 0xff;
        exit_info.insert(&pid, &code);   // unless a fatal signal came first (see signal_deliver)
        // exit() has flushed stdio by now; _exit() has not.
        report_stdio_lost(pid, tid);
        return 0;
    }
    // Reuse this thread's slot: an insert and a delete per call cost more.
    struct inflight *slot = inflight.lookup(&tid);
    if (slot) *slot = in;
    else if (inflight.update(&tid, &in) != 0) count_lost();
    return 0;
}

// Whether a write that returned ret is folded into a write run: a full write
// (vectored: every iovec whole), without RWF_* flags.
static __always_inline int write_folds(s64 nr, s64 ret, struct inflight *call) {
    u64 count = 0;
    if (nr == __NR_write || nr == __NR_pwrite64) count = call->args[2];
    // Vectored writes: only a non-negative return is folded; the byte
    // count asked for is unknown without walking the iovec, so short
    // vectored writes are detected by the iovec total below.
    if (nr == __NR_writev || nr == __NR_pwritev || nr == __NR_pwritev2) {
        u64 total = 0;
        struct { u64 base; u64 len; } iov;
        #pragma unroll
        for (int i = 0; i < 8; i++) {
            if (i >= call->args[2]) break;
            if (read_user(&iov, sizeof(iov), (void *)(call->args[1] + i * 16)) != 0) break;
            total += iov.len;
        }
        count = call->args[2] <= 8 ? total : (u64)ret;
    }
    int rwf = nr == __NR_pwritev2 && call->args[5] != 0;
    return FOLD_WRITES && ret >= 0 && (u64)ret == count && !rwf;
}

// Whether a sendto that returned ret is folded into a run, as a write is: a full
// send without a destination address (send(), or sendto on a connected socket),
// of at least a byte (what analysis/rules/base.py's is_send counts). Its flags
// (MSG_NOSIGNAL, MSG_MORE, ...) are dropped: nothing downstream reads them.
// Not under CAPTURE_DATA: each send is an acknowledgement the crash recorder
// places among the writes (crash/recording.py).
static __always_inline int send_folds(s64 ret, struct inflight *call) {
    return FOLD_WRITES && call->args[4] == 0 && ret > 0 && (u64)ret == call->args[2];
}

static __always_inline void add_to_run(struct write_run *r, struct inflight *call, s64 ret) {
    if (r->calls++ == 0) r->ts_first = call->ts;
    r->bytes += ret;
    if ((u64)ret > r->size_max) r->size_max = ret;
    r->ts_last = call->ts;   // a write's call->ts is its exit time
}

RAW_TRACEPOINT_PROBE(sys_exit) {
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32, tid = id;
    // Every syscall of every process on the host comes here: those outside
    // the tree are done after the bitmaps (bench/bystander.py measures it).
    if (!may_be_traced(pid)) return 0;
    s64 ret = ctx->args[1];
    // A syscall leaves its argument registers as they were, so a write is
    // decoded here from them: its entry costs nothing and needs no slot.
    struct inflight call;
    struct inflight *in = &call;
    s64 nr = read_call(ctx->args[0], &call);
    int folds = 0;
    struct write_run *r = 0, *opened = 0;
    if (decoded_at_exit(nr)) {
        call.ts = bpf_ktime_get_ns();
        folds = nr == __NR_sendto ? send_folds(ret, &call) : write_folds(nr, ret, &call);
        // The storm's path: a write that continues this thread's run (same fd,
        // no event since; sends only with sends, past other processes' events
        // when send_joins_run) joins it without asking
        // `traced`. A run is begun only by a traced thread and deleted at the
        // thread's exit.
        if (folds && (r = runs.lookup(&tid)) && (r->calls || r->open) && r->fd == call.args[0] &&
            (r->nr == __NR_sendto) == (nr == __NR_sendto) &&
            (r->epoch == current_epoch() || (nr == __NR_sendto && send_joins_run(pid, r)))) {
            add_to_run(r, &call, ret);
            return 0;
        }
    }
    if (traced_state(pid) != 1) return 0;
    if (!decoded_at_exit(nr)) {
        in = inflight.lookup(&tid);
        if (!in || in->nr < 0) return 0;
        nr = in->nr;
        in->nr = -1;   // consumed; the slot stays for the thread's next call
    }
    if (nr == __NR_execve) {   // set by sched_process_exec: this is the new image's first return
        report_exec(ctx->args[0], tid);
#ifdef STACKS
        report_auxv(ctx, pid, tid);
#endif
        return 0;
    }

    if (folds) {
        // Another fd, or an event came between: a new run.
        if (r && r->calls) flush_run(pid, tid);
        if (!r) {
            int zero = 0;
            struct write_run *blank = blank_run.lookup(&zero);
            if (blank) runs.update(&tid, blank);
            r = runs.lookup(&tid);
            if (!r) {
                count_lost();
                return 0;
            }
        }
        r->pid = pid;
        r->fd = call.args[0];
        r->nr = nr;
        r->bytes = 0;
        r->size_max = 0;
        r->calls = 0;
        r->open = 0;
#ifdef STACKS
        capture_stack(ctx, ctx->args[0], r->stack);
#endif
        if (nr == __NR_sendto && window_may_be_open()) {
            opened = r;   // this send goes out as an event (below), the run opens behind it
        } else {
            r->epoch = current_epoch();
            r->joins_past = nr == __NR_sendto && sender_is_clean(pid);
            if (nr != __NR_sendto) {
                struct process_writes zero = {};
                struct process_writes *p = process_writes.lookup_or_try_init(&pid, &zero);
                if (p) __sync_fetch_and_add(&p->open_runs, 1);
            }
            add_to_run(r, &call, ret);
            return 0;
        }
    }

#ifdef STACKS
    // Before this event's epoch and record: the code objects the Python stack
    // names reach the ring buffer (EV_PYCODE) ahead of it.
    u64 py_code[PY_FRAMES];
    u32 py_lasti[PY_FRAMES];
    py_stack(pid, tid, py_code, py_lasti);
#endif
    // Anything else ends this thread's write run first, keeping kernel order.
    flush_run(pid, tid);
    u32 epoch = bump_epoch();
    if (opened) {
        opened->epoch = epoch;
        opened->open = 1;
        opened->joins_past = 1;
    }
    u64 ts = bpf_ktime_get_ns();
    note_process_event(pid, nr, ret, in, ts, epoch);
    struct event *e = reserve(pid, tid, nr);
    if (!e) return 0;
    e->ts = ts;
    e->ts_first = in->ts;
    e->epoch = epoch;
    e->ret = ret;
    #pragma unroll
    for (int i = 0; i < 6; i++) e->args[i] = in->args[i];
#ifdef STACKS
    capture_stack(ctx, ctx->args[0], e->stack);
    __builtin_memcpy(e->py_code, py_code, sizeof(py_code));
    __builtin_memcpy(e->py_lasti, py_lasti, sizeof(py_lasti));
#endif
    int pa = path_args(nr);
    int p1 = pa >> 4, p2 = pa & 0xf;
    u64 size = PATH_OFFSET;
    long n;
    if (p1 < 6 && (n = read_user_str(e->path, PATH_LEN, (void *)in->args[p1 & 7])) > 0) size = PATH_OFFSET + n;
    if (p2 < 6) {
        n = read_user_str(e->path2, PATH_LEN, (void *)in->args[p2 & 7]);
        size = PATH2_OFFSET + (n > 0 ? n : 1);   // an unreadable path2 is an empty one
    }
    if (ret == 0 && (nr == __NR_pipe || nr == __NR_pipe2 || nr == __NR_socketpair)) {
        // The two new fds (int[2]) go to args[5], which these calls do not use.
        void *pair = (void *)(nr == __NR_socketpair ? in->args[3] : in->args[0]);
        read_user(&e->args[5], 8, pair);
    }
    if (nr == __NR_bind && ret == 0) {
        // A unix socket's name in the filesystem is no file (rules.md, scope): struct
        // sockaddr_un is a u16 family, then sun_path (108 bytes; abstract names start with 0).
        u16 family = 0;
        read_user(&family, sizeof(family), (void *)in->args[1]);
        if (family == 1 && (n = read_user_str(e->path, 108, (void *)(in->args[1] + 2))) > 1)
            size = PATH_OFFSET + n;
    }
    if (nr == __NR_openat2) {
        // struct open_how { u64 flags; u64 mode; u64 resolve; } (uapi)
        u64 how[2] = {};
        read_user(how, sizeof(how), (void *)in->args[2]);
        e->args[2] = how[0];
        e->args[3] = how[1];
    }
    submit(e, size);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_fork) {
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32, tid = id;
    u32 child = args->child_pid;
    int k = 2;
    u64 *spawner = counters.lookup(&k);
    if (spawner && *spawner == pid) {
        mark_traced(child, 2);   // fsaudit's own child: traced from its exec on
        return 0;
    }
    if (traced_state(pid) != 1) return 0;
    struct inflight *in = inflight.lookup(&tid);
    u64 flags = in ? in->args[0] : 0;
    if (in && (in->nr == __NR_fork || in->nr == __NR_vfork)) flags = 0;
    if (flags & 0x00010000) return 0;   // CLONE_THREAD: same tgid, already traced
    mark_traced(child, 1);
#ifdef STACKS
    py_fork(pid, child);
#endif
    flush_run(pid, tid);
    struct event *e = reserve(pid, tid, EV_FORK);
    if (!e) return 0;
    e->ts = e->ts_first = bpf_ktime_get_ns();
    e->epoch = bump_epoch();
    e->ret = child;
    e->args[0] = child;
    e->args[1] = flags;
    submit(e, PATH_OFFSET);
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exec) {
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32, tid = id;
    if (!traced_state(pid)) return 0;
    mark_traced(pid, 1);
    stdio_files.delete(&pid);
    // A thread other than the main one that execs now has the process's id
    // (the kernel killed the others, the main one included): its write run
    // and slot under its old id end here, or they would never be freed.
    // Any exec ends the old image's run before the exec event, while its
    // fds (some close on exec) still resolve.
    u32 old_tid = args->old_pid;
    flush_run(pid, old_tid);
    if (old_tid != tid) {
        runs.delete(&old_tid);
        inflight.delete(&old_tid);
    }
    // The SIGKILL those threads got is not the new program's fate.
    exit_info.delete(&pid);
    // The exec event waits for the new image's return to user space (report_exec),
    // which nothing of the process can come before.
    struct event *e = reserve(pid, tid, EV_EXEC);
    if (!e) return 0;
    e->ts = e->ts_first = bpf_ktime_get_ns();
    e->ret = 0;
    e->args[0] = args->old_pid;
    e->args[1] = e->args[2] = e->args[3] = 0;
    read_kernel_str(e->path, PATH_LEN, (void *)args + (args->data_loc_filename & 0xffff));
    if (execs.update(&tid, e) != 0) {
        count_lost();
        return 0;
    }
    struct inflight execve = {};
    execve.nr = __NR_execve;   // report_exec (and report_auxv) at this thread's return
    inflight.update(&tid, &execve);
    return 0;
}

TRACEPOINT_PROBE(signal, signal_deliver) {
    u32 pid = bpf_get_current_pid_tgid() >> 32;
    if (!traced_state(pid)) return 0;
    int sig = args->sig;
    // Default action of these signals terminates the process.
    u64 fatal = (1ULL << 1) | (1ULL << 2) | (1ULL << 3) | (1ULL << 4) |
                (1ULL << 5) | (1ULL << 6) | (1ULL << 7) | (1ULL << 8) |
                (1ULL << 9) | (1ULL << 11) | (1ULL << 13) | (1ULL << 14) |
                (1ULL << 15) | (1ULL << 24) | (1ULL << 25) | (1ULL << 26) |
                (1ULL << 27) | (1ULL << 31) | (1ULL << 10) | (1ULL << 12);
    if (args->sa_handler != 0 && sig != 9) return 0;
    if (sig <= 0 || sig > 31 || !((fatal >> sig) & 1)) return 0;
    u64 info = (u64)sig << 8;
    // The first fatal signal or exit_group decides, as in the kernel: the
    // SIGKILL that ends the other threads (of exit_group, a fatal signal or
    // an exec) is not how the process ended.
    exit_info.insert(&pid, &info);
    report_stdio_lost(pid, (u32)bpf_get_current_pid_tgid());
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit) {
    u64 id = bpf_get_current_pid_tgid();
    u32 pid = id >> 32, tid = id;
    if (!traced_state(pid)) return 0;
    report_exec(0, tid);   // exec'd, then killed before its first return
    flush_run(pid, tid);
    runs.delete(&tid);
    inflight.delete(&tid);
#ifdef EXIT_GROUP_DEAD
    // The process lives while any of its threads does: its main thread may
    // pthread_exit first, or be killed by another thread's exec.
    if (!args->group_dead) return 0;
#else
    // This kernel's tracepoint does not say which thread is the last: the
    // main thread's exit stands for the process's, so what its other threads
    // do afterwards, or a program exec'd by one of them, is not seen
    // (docs/events.md).
    if (pid != tid) return 0;
#endif
    struct event *e = reserve(pid, tid, EV_EXIT);
    if (e) {
        e->ts = e->ts_first = bpf_ktime_get_ns();
        e->epoch = bump_epoch();
        u64 *info = exit_info.lookup(&pid);
        e->ret = info ? *info : 0;
        submit(e, PATH_OFFSET);
    }
    exit_info.delete(&pid);
    stdio_files.delete(&pid);
    process_writes.delete(&pid);
    unmark_traced(pid);
#ifdef STACKS
    py_exit(pid);
#endif
    return 0;
}
