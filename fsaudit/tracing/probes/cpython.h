// Python frames of CPython 3.11 processes, for `fsaudit run --stacks`.
//
// Included by fsaudit.c (with -DSTACKS) after its maps, reserve()/submit()
// and current_epoch(); bcc rewrites its map syntax in the main
// source only, so the tracer pastes this header in (stacks/cpython.py, inline_headers).
// Everything is read here, at syscall time:
// user space sees events tens of milliseconds late, when the process may be
// gone. A stack is code object addresses plus instruction indexes; each code
// object's names and line table cross once per process image as EV_PYCODE
// events, and fsaudit/tracing/stacks/cpython.py turns the pair into "qualname (file:line)".
//
// Only CPython 3.11 executables that export _PyRuntime (libpython linked in)
// and that user space registered in py_images by GNU build-id get frames;
// any other Python (other versions, libpython3.x.so builds) gets none.

// struct event, PATH_LEN, PY_FRAMES (frames per stack, innermost first) and
// EV_PYCODE (the pseudo syscall number of a code object's event) are
// fsaudit.h's: its event has room for a Python stack.

// CPython 3.11 x86-64 layout. Each value is the expression in its comment,
// evaluated against /usr/include/python3.11 with Py_BUILD_CORE (3.11.2 and
// 3.11.7 agree); tests/test_cpython_frames.py recompiles them and compares.
#define PY311_RUNTIME_INTERP_HEAD   40   // offsetof(_PyRuntimeState, interpreters.head)
#define PY311_INTERP_NEXT            0   // offsetof(PyInterpreterState, next)
#define PY311_INTERP_THREADS_HEAD   16   // offsetof(PyInterpreterState, threads.head)
#define PY311_TSTATE_NEXT            8   // offsetof(PyThreadState, next)
#define PY311_TSTATE_CFRAME         56   // offsetof(PyThreadState, cframe)
#define PY311_TSTATE_NATIVE_TID    160   // offsetof(PyThreadState, native_thread_id)
#define PY311_CFRAME_CURRENT_FRAME   8   // offsetof(_PyCFrame, current_frame)
#define PY311_FRAME_CODE            32   // offsetof(_PyInterpreterFrame, f_code)
#define PY311_FRAME_PREVIOUS        48   // offsetof(_PyInterpreterFrame, previous)
#define PY311_FRAME_PREV_INSTR      56   // offsetof(_PyInterpreterFrame, prev_instr)
#define PY311_FRAME_OWNER           69   // offsetof(_PyInterpreterFrame, owner)
#define PY311_CODE_FIRSTLINENO      72   // offsetof(PyCodeObject, co_firstlineno)
#define PY311_CODE_FILENAME        112   // offsetof(PyCodeObject, co_filename)
#define PY311_CODE_QUALNAME        128   // offsetof(PyCodeObject, co_qualname)
#define PY311_CODE_LINETABLE       136   // offsetof(PyCodeObject, co_linetable)
#define PY311_CODE_FIRSTTRACEABLE  168   // offsetof(PyCodeObject, _co_firsttraceable)
#define PY311_CODE_ADAPTIVE        184   // offsetof(PyCodeObject, co_code_adaptive)
#define PY311_BYTES_SIZE            16   // offsetof(PyBytesObject, ob_base.ob_size)
#define PY311_BYTES_DATA            32   // offsetof(PyBytesObject, ob_sval)
#define PY311_STR_LENGTH            16   // offsetof(PyASCIIObject, length)
#define PY311_STR_STATE             32   // offsetof(PyASCIIObject, state)
#define PY311_STR_ASCII_DATA        48   // sizeof(PyASCIIObject)
#define PY311_STR_COMPACT_DATA      72   // sizeof(PyCompactUnicodeObject)
// PyASCIIObject.state bit-fields, low bit first (interned:2, kind:3,
// compact:1, ascii:1): kind is 1, 2 or 4 bytes per character.
#define PY311_STATE_KIND(s)    (((s) >> 2) & 7)
#define PY311_STATE_COMPACT    0x20
#define PY311_STATE_ASCII      0x40
#define PY311_OWNED_BY_GENERATOR 1       // enum _frameowner
#define PY311_CODE_UNIT 2                // sizeof(_Py_CODEUNIT)

#define PY_LAYOUT_NONE 0       // not a registered CPython
#define PY_LAYOUT_311 1
#define PY_LAYOUT_PENDING 255  // exec'd, build-id not read yet
#define PY_PHDRS 16          // program headers searched for PT_PHDR and PT_NOTE
#define PY_PHDR_WORDS 7      // sizeof(Elf64_Phdr) / 8
#define PY_NOTE_WORDS 128    // 4-byte words of notes searched for the build-id
#define PY_THREADS 32        // thread states searched for the calling thread
#define PY_WALK (PY_FRAMES + 2)   // frames visited: incomplete ones (rare) are skipped
#define PY_FILE_MAX 176      // co_filename bytes shipped (its tail), a multiple of 4
#define PY_QUAL_MAX 76       // co_qualname bytes shipped (its head); 176 + 1 + 76 <= PATH_LEN
#define PY_LINE_CHUNKS 3     // extra events of 2 * PATH_LEN line table bytes each

struct py_build_id {
    u8 id[20];           // NT_GNU_BUILD_ID, zero-padded
};

struct py_image {
    u64 runtime;         // _PyRuntime's address in the image (st_value)
    u32 layout;          // PY_LAYOUT_*
    u32 pad;
};

struct py_proc {
    u64 runtime;         // _PyRuntime's address in the process
    u64 space;           // this image's code object space, shared with fork children
    u64 at_phdr;         // where to read the build-id, until it is read
    u32 at_phnum;
    u32 layout;          // PY_LAYOUT_*
};

struct py_code_key {
    u64 space;
    u64 code;
};

// The code object fields py_stack and py_ship read: co_firstlineno up to
// _co_firsttraceable, in one read. All are 8-byte aligned; the int ones are
// the low half of their word.
#define PY_CODE_WORDS ((PY311_CODE_FIRSTTRACEABLE - PY311_CODE_FIRSTLINENO) / 8 + 1)
#define PY_CODE_FIELD(c, off) ((c)[((off) - PY311_CODE_FIRSTLINENO) / 8])

// Working memory: the 512-byte BPF stack is fsaudit.c's.
struct py_scratch {
    u64 phdrs[PY_PHDRS * PY_PHDR_WORDS];   // the program headers
    u32 notes[PY_NOTE_WORDS];     // the PT_NOTE segments' start
    u64 frame[5];                 // a _PyInterpreterFrame from f_code on
    u64 code[PY_CODE_WORDS];      // a PyCodeObject from co_firstlineno on
    // The stack being read. Here rather than in the caller's memory: the
    // verifier does not track map contents, so the shipping loop below is
    // verified once, not once per stack depth.
    u64 codes[PY_FRAMES];
    u32 lasti[PY_FRAMES];
    u64 marks[PY_FRAMES];         // what identifies each frame's code object
    u32 depth;                    // frames in codes so far
};

// Filled by fsaudit/tracing/stacks/cpython.py: build-id -> CPython image.
BPF_HASH(py_images, struct py_build_id, struct py_image, 64);
BPF_HASH(py_procs, u32, struct py_proc, 65536);
// Code objects already shipped: key -> fingerprint of the code object, so
// that a freed code object's address reused by another one ships anew. LRU:
// an evicted entry costs one more event, never a wrong name. Entries of
// exited processes age out: their space is never used again.
BPF_TABLE("lru_hash", struct py_code_key, u64, py_code_seen, 32768);
BPF_PERCPU_ARRAY(py_scratch, struct py_scratch, 1);

// bpf_probe_read_user under another name: bcc 0.26 re-reads the kernel's
// symbol table for every call of it that it compiles (~60 ms each).
static long (*py_read)(void *dst, u32 size, const void *user) = (void *)BPF_FUNC_probe_read_user;

static __always_inline u64 py_read_u64(u64 addr) {
    u64 v = 0;
    py_read(&v, sizeof(v), (void *)addr);
    return v;
}

// The executable's GNU build-id and load bias, from its program headers in
// memory (ELF64, uapi layout: Elf64_Phdr, Elf64_Nhdr). 1 found, 0 none, -1
// not readable (yet). The build-id note is found by its fixed header in
// the span of the PT_NOTE segments: a walk from note to note, segment by
// segment, costs the verifier many times more.
static __always_inline int py_build_id(u64 at_phdr, u64 at_phnum, struct py_build_id *id, u64 *bias,
                                       struct py_scratch *s) {
    u64 count = at_phnum < PY_PHDRS ? at_phnum : PY_PHDRS;
    if (py_read(s->phdrs, count * PY_PHDR_WORDS * 8, (void *)at_phdr) != 0) return -1;
    u64 phdr = -1, lo = -1, hi = 0;
    for (int i = 0; i < PY_PHDRS; i++) {
        if (i >= count) break;
        // p_type, p_flags | p_offset | p_vaddr | p_paddr | p_filesz | p_memsz | p_align
        u64 *ph = &s->phdrs[i * PY_PHDR_WORDS];
        u32 type = ph[0];
        if (type == 6) phdr = ph[2];   // PT_PHDR: where these headers are, unrelocated
        if (type == 4 && ph[2] < lo) lo = ph[2];   // PT_NOTE
        if (type == 4 && ph[2] + ph[4] > hi) hi = ph[2] + ph[4];
    }
    if (phdr == -1 || lo >= hi) return 0;   // every dynamically linked executable has PT_PHDR
    *bias = at_phdr - phdr;
    u32 size = hi - lo < sizeof(s->notes) ? hi - lo : sizeof(s->notes);
    if (py_read(s->notes, size, (void *)(*bias + lo)) != 0) return -1;
    // Notes are 4-byte aligned: n_namesz 4, n_descsz, n_type NT_GNU_BUILD_ID, "GNU\0", then the id.
    for (int i = 0; i < PY_NOTE_WORDS - 3; i++) {
        if ((i + 4) * 4 > size) break;
        u32 *w = &s->notes[i];
        if (((w[0] ^ 4) | (w[2] ^ 3) | (w[3] ^ 0x00554e47)) == 0) {   // one branch: cheaper to verify
            u32 n = w[1] < sizeof(id->id) ? w[1] : sizeof(id->id);
            return py_read(id->id, n, (void *)(*bias + lo + i * 4 + 16)) == 0 ? 1 : -1;
        }
    }
    return 0;
}

// The process finished execve. Which image it runs is read at its first
// stack (py_resolve): now the executable's pages are not mapped in yet (the
// kernel read its headers through the file) and BPF cannot fault them in;
// by then the dynamic loader has read the program headers.
static __always_inline void py_exec(u32 pid, u64 at_phdr, u64 at_phnum) {
    struct py_proc proc = {};
    // Unique per exec (a pid fits in 22 bits): a reused pid or a new image
    // never finds the code objects its predecessor shipped.
    proc.space = (bpf_ktime_get_ns() << 22) | pid;
    proc.at_phdr = at_phdr;
    proc.at_phnum = at_phnum;
    proc.layout = PY_LAYOUT_PENDING;
    py_procs.update(&pid, &proc);
}

// Is the pending image a registered CPython? Unreadable: try again next time.
static __always_inline void py_resolve(struct py_proc *proc, struct py_scratch *s) {
    struct py_build_id id = {};
    u64 bias = 0;
    int found = py_build_id(proc->at_phdr, proc->at_phnum, &id, &bias, s);
    if (found < 0) return;
    struct py_image *image = found ? py_images.lookup(&id) : 0;
    proc->layout = image ? image->layout : PY_LAYOUT_NONE;
    if (image) proc->runtime = bias + image->runtime;
}

// A fork child has the parent's memory, code objects included: it shares
// the parent's space, so code objects either ships are known to both.
static __always_inline void py_fork(u32 parent, u32 child) {
    struct py_proc *proc = py_procs.lookup(&parent);
    if (!proc) return;
    struct py_proc copy = *proc;
    py_procs.update(&child, &copy);
}

static __always_inline void py_exit(u32 pid) {
    py_procs.delete(&pid);
}

// The calling thread's PyThreadState: thread states of every interpreter,
// matched by native_thread_id (the GIL is released in a syscall, so the
// runtime's current thread state is not this thread's).
static __always_inline u64 py_thread_state(u64 runtime, u32 tid) {
    u64 interp = py_read_u64(runtime + PY311_RUNTIME_INTERP_HEAD);
    u64 tstate = interp ? py_read_u64(interp + PY311_INTERP_THREADS_HEAD) : 0;
    for (int i = 0; i < PY_THREADS; i++) {
        if (!tstate) {
            interp = interp ? py_read_u64(interp + PY311_INTERP_NEXT) : 0;
            if (!interp) return 0;
            tstate = py_read_u64(interp + PY311_INTERP_THREADS_HEAD);
            continue;
        }
        if (py_read_u64(tstate + PY311_TSTATE_NATIVE_TID) == tid) return tstate;
        tstate = py_read_u64(tstate + PY311_TSTATE_NEXT);
    }
    return 0;
}

// Copy a compact str's characters as stored (1, 2 or 4 bytes each; user
// space decodes them) to dst, at most max bytes: the tail of a longer one
// (a path's end says most), else the head. *desc = (length << 8) | kind,
// 0 when unreadable. Returns the bytes copied.
static __always_inline u32 py_str(char *dst, u64 str, u32 max, int tail, u64 *desc) {
    u64 h[3];   // length, hash, state
    *desc = 0;
    if (!str || py_read(h, sizeof(h), (void *)(str + PY311_STR_LENGTH)) != 0) return 0;
    u32 state = h[2], kind = PY311_STATE_KIND(state);
    if (!(state & PY311_STATE_COMPACT) || (kind != 1 && kind != 2 && kind != 4)) return 0;
    u64 data = str + (state & PY311_STATE_ASCII ? PY311_STR_ASCII_DATA : PY311_STR_COMPACT_DATA);
    u64 bytes = h[0] * kind;
    if (bytes > max) {
        if (tail) data += bytes - max;
        bytes = max;
    }
    u32 n = bytes;
    if (n > max || py_read(dst, n, (void *)data) != 0) return 0;
    *desc = (h[0] << 8) | kind;
    return n;
}

// One EV_PYCODE event: args[0] code address, args[1] co_firstlineno,
// args[2] line table bytes in path2, args[3]/args[4] co_filename/co_qualname
// as (length << 8) | kind, args[5] the space; path = co_filename's bytes, NUL,
// co_qualname's bytes; ret 0. Line tables longer than PATH_LEN follow in up
// to PY_LINE_CHUNKS events with ret = their offset in the table, args[2]
// their size, their bytes in path and path2 (adjacent: 2 * PATH_LEN).
// Returns 0 when nothing was shipped (try again at the next stack).
static __always_inline int py_ship(u32 pid, u32 tid, u64 space, u64 code, struct py_scratch *s) {
    u64 *c = s->code;
    if (py_read(c, sizeof(s->code), (void *)(code + PY311_CODE_FIRSTLINENO)) != 0) return 0;
    u64 table = PY_CODE_FIELD(c, PY311_CODE_LINETABLE);
    u64 table_size = table ? py_read_u64(table + PY311_BYTES_SIZE) : 0;
    struct event *e = reserve(pid, tid, EV_PYCODE);
    if (!e) return 0;
    e->ts = e->ts_first = bpf_ktime_get_ns();
    e->epoch = current_epoch();   // no epoch of its own: it is not a syscall
    e->ret = 0;
    e->args[0] = code;
    e->args[1] = (s32)PY_CODE_FIELD(c, PY311_CODE_FIRSTLINENO);
    e->args[5] = space;
    u32 n = py_str(e->path, PY_CODE_FIELD(c, PY311_CODE_FILENAME), PY_FILE_MAX, 1, &e->args[3]);
    if (n > PY_FILE_MAX) n = PY_FILE_MAX;   // for the verifier
    e->path[n] = 0;
    py_str(e->path + n + 1, PY_CODE_FIELD(c, PY311_CODE_QUALNAME), PY_QUAL_MAX, 0, &e->args[4]);
    u32 size = table_size < PATH_LEN ? table_size : PATH_LEN;
    if (py_read(e->path2, size, (void *)(table + PY311_BYTES_DATA)) != 0) size = 0;
    e->args[2] = size;
    submit(e, PATH2_OFFSET + size);
    for (int k = 0; k < PY_LINE_CHUNKS; k++) {
        u64 offset = PATH_LEN + k * 2 * PATH_LEN;
        if (offset >= table_size) break;
        e = reserve(pid, tid, EV_PYCODE);
        if (!e) break;
        e->ts = e->ts_first = bpf_ktime_get_ns();
        e->epoch = current_epoch();
        e->ret = offset;
        e->args[0] = code;
        e->args[1] = e->args[3] = e->args[4] = 0;
        e->args[5] = space;
        size = table_size - offset < 2 * PATH_LEN ? table_size - offset : 2 * PATH_LEN;
        if (py_read(e->path, size, (void *)(table + PY311_BYTES_DATA + offset)) != 0) size = 0;
        e->args[2] = size;
        submit(e, PATH_OFFSET + size);
    }
    return 1;
}

// The calling thread's Python frames, innermost first: codes[i] the code
// object, lasti[i] _PyInterpreterFrame_LASTI (-1 before the first
// instruction); codes[i] == 0 ends the stack. Code objects new to this
// process image are shipped as EV_PYCODE events first, so call it before
// reserving the event the stack is for.
static __always_inline void py_stack(u32 pid, u32 tid, u64 *codes, u32 *lasti) {
    __builtin_memset(codes, 0, PY_FRAMES * sizeof(u64));
    __builtin_memset(lasti, 0, PY_FRAMES * sizeof(u32));
    int zero = 0;
    struct py_scratch *s = py_scratch.lookup(&zero);
    struct py_proc *proc = py_procs.lookup(&pid);
    if (!s || !proc) return;
    if (proc->layout == PY_LAYOUT_PENDING) py_resolve(proc, s);
    if (proc->layout != PY_LAYOUT_311) return;
    u64 space = proc->space;
    u64 tstate = py_thread_state(proc->runtime, tid);
    if (!tstate) return;
    u64 cframe = py_read_u64(tstate + PY311_TSTATE_CFRAME);
    u64 frame = cframe ? py_read_u64(cframe + PY311_CFRAME_CURRENT_FRAME) : 0;
    u64 *f = s->frame, *c = s->code;
    __builtin_memset(s->codes, 0, sizeof(s->codes));
    s->depth = 0;   // in map memory too: the walk is verified per frame visited, not per depth as well
    for (int k = 0; k < PY_WALK; k++) {
        // f_code, frame_obj, previous, prev_instr, stacktop | is_entry | owner
        if (!frame || s->depth >= PY_FRAMES) break;
        if (py_read(f, sizeof(s->frame), (void *)(frame + PY311_FRAME_CODE)) != 0) break;
        u64 code = f[0], prev_instr = f[(PY311_FRAME_PREV_INSTR - PY311_FRAME_CODE) / 8];
        u8 owner = ((u8 *)f)[PY311_FRAME_OWNER - PY311_FRAME_CODE];
        frame = f[(PY311_FRAME_PREVIOUS - PY311_FRAME_CODE) / 8];
        if (!code || py_read(c, sizeof(s->code), (void *)(code + PY311_CODE_FIRSTLINENO)) != 0) break;
        u64 first = code + PY311_CODE_ADAPTIVE;
        // _PyFrame_IsIncomplete: still setting up (before its first RESUME);
        // tracebacks skip such frames, so do we.
        s32 traceable = (s32)PY_CODE_FIELD(c, PY311_CODE_FIRSTTRACEABLE);
        if (owner != PY311_OWNED_BY_GENERATOR && prev_instr < first + traceable * PY311_CODE_UNIT) continue;
        u32 n = s->depth & (PY_FRAMES - 1);
        s->codes[n] = code;
        // BPF has no signed division: an arithmetic shift by log2(sizeof(_Py_CODEUNIT)).
        s->lasti[n] = (s64)(prev_instr - first) >> 1;
        s->marks[n] = PY_CODE_FIELD(c, PY311_CODE_FILENAME) ^ PY_CODE_FIELD(c, PY311_CODE_QUALNAME) ^
            PY_CODE_FIELD(c, PY311_CODE_LINETABLE) ^ (u32)PY_CODE_FIELD(c, PY311_CODE_FIRSTLINENO);
        s->depth++;
    }
    for (int i = 0; i < PY_FRAMES; i++) {
        u64 code = s->codes[i];
        if (!code) break;
        struct py_code_key key = {space, code};
        u64 *seen = py_code_seen.lookup(&key);
        if (seen && *seen == s->marks[i]) continue;
        if (py_ship(pid, tid, space, code, s)) py_code_seen.update(&key, &s->marks[i]);
    }
    __builtin_memcpy(codes, s->codes, sizeof(s->codes));
    __builtin_memcpy(lasti, s->lasti, sizeof(s->lasti));
}
