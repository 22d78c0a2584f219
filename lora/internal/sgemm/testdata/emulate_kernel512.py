#!/usr/bin/python3
"""Checks kernel12x32 (kernel512_amd64.s) on a CPU without AVX-512.

TestKernel12x32MatchesModel runs the AVX-512 kernel only where the CPU has
it. On other machines this script runs the assembled kernel in an
instruction-level emulator instead: it disassembles kernel12x32 from a test
binary with GNU objdump (Intel syntax), executes the instructions it finds
(the integer moves and arithmetic, loads, stores, broadcasts, FMAs and
branches the kernel uses; anything else stops the run) on a flat memory
image, and compares the tile it writes with numpy's product, over packed
and in-place layouts, depths around the 4x unrolling and the three update
modes. It also checks that the kernel stores only into the 12x32 tile.

    go test -c -o /tmp/sgemm.test ./lora/internal/sgemm
    /usr/bin/python3 lora/internal/sgemm/testdata/emulate_kernel512.py /tmp/sgemm.test

Exit status 0 when every case matches.
"""
import re
import struct
import subprocess
import sys

import numpy as np

SYM = "sgemm.kernel12x32.abi0>:"


def disassemble(binary):
    out = subprocess.run(["objdump", "-d", "-M", "intel", "--no-show-raw-insn", binary],
                         check=True, capture_output=True, text=True).stdout
    lines, on = [], False
    for line in out.splitlines():
        if line.endswith(SYM):
            on = True
            continue
        if on:
            if not line.strip():
                break
            m = re.match(r"\s*([0-9a-f]+):\s+(\S+)\s*(.*)", line)
            if m:
                lines.append((int(m.group(1), 16), m.group(2), m.group(3).strip()))
    if not lines:
        sys.exit("kernel12x32 not found in " + binary)
    return lines


GPR = {n: n for n in "rax rbx rcx rdx rsi rdi rsp rbp r8 r9 r10 r11 r12 r13 r14 r15".split()}


class Machine:
    def __init__(self, size):
        self.mem = bytearray(size)
        self.r = {n: 0 for n in GPR}
        self.z = [np.zeros(16, np.float32) for _ in range(32)]
        self.zf = False
        self.sf_gt = False
        self.stores = []

    def addr(self, op):
        m = re.match(r"(?:\w+ PTR )?\[(.*)\]$", op)
        total = 0
        for term in re.findall(r"[+-]?[^+-]+", m.group(1).replace(" ", "")):
            sign = -1 if term.startswith("-") else 1
            term = term.lstrip("+-")
            if "*" in term:
                reg, scale = term.split("*")
                total += sign * self.r[reg] * int(scale)
            elif term in GPR:
                total += sign * self.r[term]
            else:
                total += sign * int(term, 16)
        return total

    def getf(self, a, n):
        return np.frombuffer(bytes(self.mem[a:a + 4 * n]), np.float32).copy()

    def putf(self, a, v):
        self.stores.append((a, 4 * len(v)))
        self.mem[a:a + 4 * len(v)] = np.asarray(v, np.float32).tobytes()

    def vec(self, op):
        if op.startswith("zmm"):
            return self.z[int(op[3:])]
        return self.getf(self.addr(op), 16)

    def val(self, op):
        if op in GPR:
            return self.r[op]
        if "[" in op:
            return struct.unpack("<q", bytes(self.mem[self.addr(op):self.addr(op) + 8]))[0]
        return int(op, 16)


def fma(a, b, c):
    return (a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)).astype(np.float32)


def run(code, m, limit=10_000_000):
    index = {addr: i for i, (addr, _, _) in enumerate(code)}
    pc, steps = 0, 0
    while True:
        steps += 1
        if steps > limit:
            raise RuntimeError("runaway")
        addr, op, args = code[pc]
        a = [x.strip() for x in args.split(",")] if args else []
        pc += 1
        if op == "mov":
            if "[" in a[0]:
                raise RuntimeError("unexpected store " + args)
            m.r[a[0]] = m.val(a[1])
        elif op == "lea":
            m.r[a[0]] = m.addr(a[1])
        elif op in ("add", "and", "shl", "shr"):
            x, y = m.r[a[0]], m.val(a[1])
            x = {"add": x + y, "and": x & y, "shl": x << y, "shr": x >> y}[op]
            m.r[a[0]] = x & (2**64 - 1)
            m.zf = m.r[a[0]] == 0
        elif op == "dec":
            m.r[a[0]] -= 1
            m.zf = m.r[a[0]] == 0
        elif op == "cmp":
            d = m.val(a[0]) - m.val(a[1])
            m.zf, m.sf_gt = d == 0, d > 0
        elif op in ("je", "jne", "jg", "jmp"):
            take = {"je": m.zf, "jne": not m.zf, "jg": m.sf_gt and not m.zf, "jmp": True}[op]
            if take:
                pc = index[int(a[0].split()[0], 16)]
        elif op in ("prefetcht0", "vzeroupper"):
            pass
        elif op == "ret":
            return
        elif op == "vpxord":
            m.z[int(a[0][3:])] = np.zeros(16, np.float32)
        elif op == "vmovups":
            if a[0].startswith("zmm"):
                m.z[int(a[0][3:])] = m.vec(a[1])
            else:
                m.putf(m.addr(a[0]), m.z[int(a[1][3:])])
        elif op == "vbroadcastss":
            m.z[int(a[0][3:])] = np.full(16, m.getf(m.addr(a[1]), 1)[0], np.float32)
        elif op == "vfmadd231ps":  # dst += src1 * src2
            d = int(a[0][3:])
            m.z[d] = fma(m.vec(a[1]), m.vec(a[2]), m.z[d])
        elif op == "vfmadd213ps":  # dst = src1 * dst + src2
            d = int(a[0][3:])
            m.z[d] = fma(m.vec(a[1]), m.z[d], m.vec(a[2]))
        elif op == "vmulps":
            m.z[int(a[0][3:])] = (m.vec(a[1]) * m.vec(a[2])).astype(np.float32)
        else:
            raise RuntimeError("instruction the emulator does not know: %s %s" % (op, args))


def case(code, rng, kc, layout, mode):
    m = Machine(1 << 22)
    lda, ldb, ldc = kc + 3, 40, 37
    A_at, B_at, C_at, SP = 0x1000, 0x100000, 0x300000, 0x3F0000
    # op(A) 12 x kc, op(B) kc x 32, as float32.
    opa = rng.uniform(-1, 1, (12, kc)).astype(np.float32)
    opb = rng.uniform(-1, 1, (kc, 32)).astype(np.float32)
    def put(addr, arr):
        m.mem[addr:addr + 4 * arr.size] = arr.astype(np.float32).tobytes()
    if layout == "packed":
        for s in range(2):
            put(A_at + 4 * 6 * kc * s, opa[6 * s:6 * s + 6].T.copy())
            put(B_at + 4 * 16 * kc * s, opb[:, 16 * s:16 * s + 16].copy())
        a0, a1, arow, astep = A_at, A_at + 4 * 6 * kc, 4, 24
        b0, b1, bstep = B_at, B_at + 4 * 16 * kc, 64
    elif layout == "rowmajor":  # A row-major with stride lda, B in place with stride ldb
        full = np.zeros((12, lda), np.float32); full[:, :kc] = opa
        put(A_at, full)
        fb = np.zeros((kc, ldb), np.float32); fb[:, 2:34] = opb
        put(B_at, fb)
        a0, a1, arow, astep = A_at, A_at + 4 * 6 * lda, 4 * lda, 4
        b0, b1, bstep = B_at + 8, B_at + 8 + 64, 4 * ldb
    else:  # transposed A: k x m with stride 13
        ld = 13
        full = np.zeros((kc, ld), np.float32); full[:, :12] = opa.T
        put(A_at, full)
        for s in range(2):
            put(B_at + 4 * 16 * kc * s, opb[:, 16 * s:16 * s + 16].copy())
        a0, a1, arow, astep = A_at, A_at + 24, 4, 4 * ld
        b0, b1, bstep = B_at, B_at + 4 * 16 * kc, 64
    c0 = rng.uniform(-1, 1, (13, ldc)).astype(np.float32)
    put(C_at, c0)
    alpha, beta = np.float32(-0.75), np.float32(1.0 if mode == 1 else 1.5)
    c = C_at + 4 * (ldc + 1)
    args = struct.pack("<qqqqqqqqqqffq", kc, a0, a1, arow, astep, b0, b1, bstep, c, ldc, alpha, beta, mode)
    m.mem[SP + 8:SP + 8 + len(args)] = args
    m.r["rsp"] = SP
    run(code, m)
    got = m.getf(C_at, 13 * ldc).reshape(13, ldc)
    acc = opa.astype(np.float64) @ opb.astype(np.float64)
    want = c0.astype(np.float64).copy()
    tile = want[1:13, 1:33]
    if mode == 0:
        want[1:13, 1:33] = alpha * acc
    elif mode == 1:
        want[1:13, 1:33] = alpha * acc + tile
    else:
        want[1:13, 1:33] = alpha * acc + beta * tile
    err = np.abs(got - want).max()
    if err > 1e-5 * (kc + 1):
        r, q = np.unravel_index(np.abs(got - want).argmax(), got.shape)
        raise AssertionError("kc=%d %s mode=%d: C[%d][%d]=%g want %g" % (kc, layout, mode, r, q, got[r, q], want[r, q]))
    for addr, n in m.stores:
        off = (addr - C_at) // 4
        row, col = divmod(off, ldc)
        if not (1 <= row <= 12 and 1 <= col and col + n // 4 - 1 <= 32):
            raise AssertionError("kc=%d %s mode=%d: store outside the tile at row %d col %d" % (kc, layout, mode, row, col))
    return err


def main():
    code = disassemble(sys.argv[1] if len(sys.argv) > 1 else "/tmp/sgemm.test")
    rng = np.random.default_rng(1232)
    n, worst = 0, 0.0
    for kc in (1, 2, 3, 4, 5, 7, 8, 9, 16, 31, 64):
        for layout in ("packed", "rowmajor", "transposed"):
            for mode in (0, 1, 2):
                worst = max(worst, case(code, rng, kc, layout, mode))
                n += 1
    print("kernel12x32: %d emulated cases match numpy (max abs error %.3g)" % (n, worst))


if __name__ == "__main__":
    main()
