/*
 * Register state across checkpoint/restore: one asm block loads the x87
 * stack (8 values) and control word, MXCSR, the vector registers (zmm0-31
 * and k0-7 with AVX-512F, else ymm0-15 with AVX, else xmm0-15), ten
 * general-purpose registers, the direction flag and, with OSPKE, PKRU; it
 * prints READY with a raw write(2) and then spins on a flag set by the
 * SIGTERM handler without touching any of those registers. The checkpoint
 * lands in that spin, in user mode; after the restore every register must
 * hold what was loaded.
 */
#include "lib.h"

#include <cpuid.h>

/* Fixed layout shared by C and asm. */
#define OFF_VEC 0	/* 32 x 64 bytes */
#define OFF_K 2048	/* 8 x 2 bytes */
#define OFF_X87 2080	/* 8 x 16 bytes (10 used) */
#define OFF_MXCSR 2208
#define OFF_FCW 2212
#define OFF_GPR 2216	/* rbx rsi rdi r8 r9 r10 r12 r13 r14 r15 */
#define OFF_FLAGS 2296
#define OFF_PKRU 2304
#define OFF_PKRU_ORIG 2308
#define REGS_SIZE 2368

struct regs {
	unsigned char b[REGS_SIZE];
} __attribute__((aligned(64)));

static struct regs in, out;
static volatile int go;
static int use_pkru;
static const char ready_msg[] = "READY\n";
static const uint32_t mxcsr_default = 0x1f80;

#define S(x) #x
#define STR(x) S(x)

/* The common prologue: x87, MXCSR, PKRU; rdi = &in. */
#define PROLOGUE \
	"lea %[in], %%rdi\n\t" \
	"fninit\n\t" \
	"fldcw " STR(OFF_FCW) "(%%rdi)\n\t" \
	"fldt " STR(OFF_X87) "+112(%%rdi)\n\t" \
	"fldt " STR(OFF_X87) "+96(%%rdi)\n\t" \
	"fldt " STR(OFF_X87) "+80(%%rdi)\n\t" \
	"fldt " STR(OFF_X87) "+64(%%rdi)\n\t" \
	"fldt " STR(OFF_X87) "+48(%%rdi)\n\t" \
	"fldt " STR(OFF_X87) "+32(%%rdi)\n\t" \
	"fldt " STR(OFF_X87) "+16(%%rdi)\n\t" \
	"fldt " STR(OFF_X87) "+0(%%rdi)\n\t" \
	"ldmxcsr " STR(OFF_MXCSR) "(%%rdi)\n\t" \
	"cmpl $0, %[use_pkru]\n\t" \
	"je 1f\n\t" \
	"xor %%ecx, %%ecx\n\t" \
	"rdpkru\n\t" \
	"lea %[out], %%rsi\n\t" \
	"mov %%eax, " STR(OFF_PKRU_ORIG) "(%%rsi)\n\t" \
	"mov " STR(OFF_PKRU) "(%%rdi), %%eax\n\t" \
	"xor %%ecx, %%ecx\n\t" \
	"xor %%edx, %%edx\n\t" \
	"wrpkru\n\t" \
	"1:\n\t"

/* READY, the magic GPRs, DF, the spin; then r11 = &out, GPRs and flags saved. */
#define WAIT \
	"mov $1, %%eax\n\t" \
	"mov $1, %%edi\n\t" \
	"lea %[msg], %%rsi\n\t" \
	"mov $6, %%edx\n\t" \
	"syscall\n\t" \
	"movabs $0x0123456789abcdef, %%rbx\n\t" \
	"movabs $0x1032547698badcfe, %%rsi\n\t" \
	"movabs $0x2301674523016745, %%rdi\n\t" \
	"movabs $0x3210fedcba987654, %%r8\n\t" \
	"movabs $0x4567012345670123, %%r9\n\t" \
	"movabs $0x5476103254761032, %%r10\n\t" \
	"movabs $0x6745230167452301, %%r12\n\t" \
	"movabs $0x76543210fedcba98, %%r13\n\t" \
	"movabs $0x89abcdef01234567, %%r14\n\t" \
	"movabs $0x98badcfe10325476, %%r15\n\t" \
	"std\n\t" \
	"2: pause\n\t" \
	"cmpl $0, %[go]\n\t" \
	"je 2b\n\t" \
	"pushfq\n\t" \
	"pop %%rax\n\t" \
	"cld\n\t" \
	"lea %[out], %%r11\n\t" \
	"mov %%rax, " STR(OFF_FLAGS) "(%%r11)\n\t" \
	"mov %%rbx, " STR(OFF_GPR) "+0(%%r11)\n\t" \
	"mov %%rsi, " STR(OFF_GPR) "+8(%%r11)\n\t" \
	"mov %%rdi, " STR(OFF_GPR) "+16(%%r11)\n\t" \
	"mov %%r8, " STR(OFF_GPR) "+24(%%r11)\n\t" \
	"mov %%r9, " STR(OFF_GPR) "+32(%%r11)\n\t" \
	"mov %%r10, " STR(OFF_GPR) "+40(%%r11)\n\t" \
	"mov %%r12, " STR(OFF_GPR) "+48(%%r11)\n\t" \
	"mov %%r13, " STR(OFF_GPR) "+56(%%r11)\n\t" \
	"mov %%r14, " STR(OFF_GPR) "+64(%%r11)\n\t" \
	"mov %%r15, " STR(OFF_GPR) "+72(%%r11)\n\t"

static const unsigned long long gpr_magic[10] = {
	0x0123456789abcdefULL, 0x1032547698badcfeULL, 0x2301674523016745ULL,
	0x3210fedcba987654ULL, 0x4567012345670123ULL, 0x5476103254761032ULL,
	0x6745230167452301ULL, 0x76543210fedcba98ULL, 0x89abcdef01234567ULL,
	0x98badcfe10325476ULL,
};

/* x87 stack, FCW, MXCSR, PKRU saved; defaults put back. */
#define EPILOGUE \
	"fstpt " STR(OFF_X87) "+0(%%r11)\n\t" \
	"fstpt " STR(OFF_X87) "+16(%%r11)\n\t" \
	"fstpt " STR(OFF_X87) "+32(%%r11)\n\t" \
	"fstpt " STR(OFF_X87) "+48(%%r11)\n\t" \
	"fstpt " STR(OFF_X87) "+64(%%r11)\n\t" \
	"fstpt " STR(OFF_X87) "+80(%%r11)\n\t" \
	"fstpt " STR(OFF_X87) "+96(%%r11)\n\t" \
	"fstpt " STR(OFF_X87) "+112(%%r11)\n\t" \
	"fnstcw " STR(OFF_FCW) "(%%r11)\n\t" \
	"stmxcsr " STR(OFF_MXCSR) "(%%r11)\n\t" \
	"fninit\n\t" \
	"ldmxcsr %[mxcsr_default]\n\t" \
	"cmpl $0, %[use_pkru]\n\t" \
	"je 3f\n\t" \
	"xor %%ecx, %%ecx\n\t" \
	"rdpkru\n\t" \
	"mov %%eax, " STR(OFF_PKRU) "(%%r11)\n\t" \
	"mov " STR(OFF_PKRU_ORIG) "(%%r11), %%eax\n\t" \
	"xor %%ecx, %%ecx\n\t" \
	"xor %%edx, %%edx\n\t" \
	"wrpkru\n\t" \
	"3:\n\t"

#define OPERANDS \
	: [in] "m"(in), [out] "m"(out), [go] "m"(go), [msg] "m"(ready_msg), \
	  [use_pkru] "m"(use_pkru), [mxcsr_default] "m"(mxcsr_default)
#define GPR_CLOBBERS "memory", "cc", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", \
	"r10", "r11", "r12", "r13", "r14", "r15"
#define XMM_CLOBBERS "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", \
	"xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

/* Vector register n lives at OFF_VEC (0) + 64 n, in `in` (rdi) and `out` (r11). */
#define LD(op, R, n) #op " " #n "*64(%%rdi), %%" #R #n "\n\t"
#define ST(op, R, n) #op " %%" #R #n ", " #n "*64(%%r11)\n\t"
#define ALL16(M, op, R) M(op, R, 0) M(op, R, 1) M(op, R, 2) M(op, R, 3) M(op, R, 4) \
	M(op, R, 5) M(op, R, 6) M(op, R, 7) M(op, R, 8) M(op, R, 9) M(op, R, 10) \
	M(op, R, 11) M(op, R, 12) M(op, R, 13) M(op, R, 14) M(op, R, 15)
#define HI16(M, op, R) M(op, R, 16) M(op, R, 17) M(op, R, 18) M(op, R, 19) M(op, R, 20) \
	M(op, R, 21) M(op, R, 22) M(op, R, 23) M(op, R, 24) M(op, R, 25) M(op, R, 26) \
	M(op, R, 27) M(op, R, 28) M(op, R, 29) M(op, R, 30) M(op, R, 31)
#define KLD(n) "kmovw " STR(OFF_K) "+" #n "*2(%%rdi), %%k" #n "\n\t"
#define KST(n) "kmovw %%k" #n ", " STR(OFF_K) "+" #n "*2(%%r11)\n\t"

static void run_sse(void)
{
	asm volatile(PROLOGUE ALL16(LD, movdqu, xmm) WAIT ALL16(ST, movdqu, xmm) EPILOGUE
		     : OPERANDS : GPR_CLOBBERS, XMM_CLOBBERS);
}

__attribute__((target("avx"))) static void run_avx(void)
{
	asm volatile(PROLOGUE ALL16(LD, vmovdqu, ymm) WAIT ALL16(ST, vmovdqu, ymm) EPILOGUE
		     "vzeroupper\n\t"
		     : OPERANDS : GPR_CLOBBERS, XMM_CLOBBERS);
}

__attribute__((target("avx512f"))) static void run_avx512(void)
{
	asm volatile(PROLOGUE ALL16(LD, vmovdqu64, zmm) HI16(LD, vmovdqu64, zmm)
		     KLD(0) KLD(1) KLD(2) KLD(3) KLD(4) KLD(5) KLD(6) KLD(7)
		     WAIT
		     ALL16(ST, vmovdqu64, zmm) HI16(ST, vmovdqu64, zmm)
		     KST(0) KST(1) KST(2) KST(3) KST(4) KST(5) KST(6) KST(7)
		     EPILOGUE "vzeroupper\n\t"
		     : OPERANDS
		     : GPR_CLOBBERS, XMM_CLOBBERS, "xmm16", "xmm17", "xmm18", "xmm19", "xmm20",
		       "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28",
		       "xmm29", "xmm30", "xmm31", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7");
}

static void sigterm(int sig)
{
	go = 1;
}

static int cpu_has_ospke(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return 0;
	return (c >> 4) & 1;	/* OSPKE: PKU enabled by the OS */
}

static void cmp(const char *what, int off, int len)
{
	if (memcmp(in.b + off, out.b + off, len)) {
		char hin[200] = "", hout[200] = "";
		for (int i = 0; i < len && i < 32; i++) {
			sprintf(hin + 2 * i, "%02x", in.b[off + i]);
			sprintf(hout + 2 * i, "%02x", out.b[off + i]);
		}
		fail("%s changed: loaded %s..., found %s...", what, hin, hout);
	}
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct sigaction sa = { .sa_handler = sigterm, .sa_flags = SA_RESTART };
	sigaction(SIGTERM, &sa, NULL);

	int nvec, vlen;
	const char *kind;
	void (*run)(void);
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f")) {
		nvec = 32, vlen = 64, kind = "AVX-512 zmm0-31 + k0-7", run = run_avx512;
	} else if (__builtin_cpu_supports("avx")) {
		nvec = 16, vlen = 32, kind = "AVX ymm0-15", run = run_avx;
	} else {
		nvec = 16, vlen = 16, kind = "SSE xmm0-15", run = run_sse;
	}
	use_pkru = cpu_has_ospke();
	test_msg("registers: x87, MXCSR, %s, 10 GPRs, DF%s", kind, use_pkru ? ", PKRU" : "");

	test_fill(in.b + OFF_VEC, 2048, 0xa5a5);
	for (int i = 0; i < 8; i++) {
		uint16_t k = 0x1234 + i * 0x1111;
		memcpy(in.b + OFF_K + 2 * i, &k, 2);
		long double v = (long double)(0x123456789abcdefLL + i * 0x1000000001LL) / (3 + i);
		if (i & 1)
			v = -v * 1e300L * 1e300L;
		memcpy(in.b + OFF_X87 + 16 * i, &v, 10);
	}
	uint32_t mxcsr = 0x1f80 | 0x8000 /* FTZ */ | 0x0040 /* DAZ */ | 0x2000 /* round down */;
	uint16_t fcw = 0x0a7f;	/* double precision, round up */
	uint32_t pkru = 0x5555555c;	/* pkey 0 open, 1 write-disabled + access-disabled */
	memcpy(in.b + OFF_MXCSR, &mxcsr, 4);
	memcpy(in.b + OFF_FCW, &fcw, 2);
	memcpy(in.b + OFF_PKRU, &pkru, 4);
	fflush(stdout);

	run();		/* prints READY and returns after SIGTERM */

	if (CORRUPT(1))
		out.b[OFF_VEC + (nvec - 1) * 64 + vlen - 1] ^= 1;
	if (CORRUPT(2))
		out.b[OFF_X87 + 7 * 16 + 9] ^= 0x40;
	if (CORRUPT(3))
		out.b[OFF_MXCSR + 1] ^= 0x20;
	if (CORRUPT(4))
		out.b[OFF_GPR + 9 * 8] ^= 1;
	if (CORRUPT(5) && nvec != 32)
		skip("CORRUPT(5) needs AVX-512");
	if (CORRUPT(5))
		out.b[OFF_K + 7 * 2] ^= 1;
	if (CORRUPT(6))
		out.b[OFF_FLAGS + 1] &= ~0x04;
	if (CORRUPT(7) && !use_pkru)
		skip("CORRUPT(7) needs PKU");
	if (CORRUPT(7))
		out.b[OFF_PKRU] ^= 4;

	char name[64];
	for (int r = 0; r < nvec; r++) {
		snprintf(name, sizeof(name), "%s%d", vlen == 64 ? "zmm" : vlen == 32 ? "ymm" : "xmm", r);
		cmp(name, OFF_VEC + 64 * r, vlen);
	}
	if (nvec == 32)
		for (int k = 0; k < 8; k++) {
			snprintf(name, sizeof(name), "k%d", k);
			cmp(name, OFF_K + 2 * k, 2);
		}
	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "x87 st(%d)", i);
		cmp(name, OFF_X87 + 16 * i, 10);
	}
	cmp("MXCSR", OFF_MXCSR, 4);
	cmp("x87 control word", OFF_FCW, 2);
	for (int i = 0; i < 10; i++) {
		unsigned long long g;
		memcpy(&g, out.b + OFF_GPR + 8 * i, 8);
		if (g != gpr_magic[i])
			fail("general-purpose register #%d is %#llx, loaded %#llx", i, g, gpr_magic[i]);
	}
	unsigned long long flags;
	memcpy(&flags, out.b + OFF_FLAGS, 8);
	if (!(flags & 0x400))
		fail("the direction flag was cleared (rflags %#llx)", flags);
	if (use_pkru)
		cmp("PKRU", OFF_PKRU, 4);
	pass();
}
