/* A stand-in for libnvidia-ml.so.1 with the few entry points carbon/nvml
 * uses, for tests on machines without an NVIDIA driver. Written for this
 * project; signatures follow the public nvml.h. */
#include <string.h>

typedef struct fake_device { int index; } *nvmlDevice_t;
static struct fake_device devices[2] = {{0}, {1}};
static int mode = 0;       /* 0: energy counters, 1: power only, 2: no devices */
static int inited = 0;
static unsigned long long energy_mj[2] = {1000000ULL, 5000000ULL};

void fakeSetMode(int m) { mode = m; }
void fakeAddEnergy(unsigned long long mj) { energy_mj[0] += mj; energy_mj[1] += 2 * mj; }

int nvmlInit_v2(void) { inited++; return 0; }
int nvmlShutdown(void) { if (inited == 0) return 1; inited--; return 0; }
const char *nvmlErrorString(int r) { return r == 3 ? "Not Supported" : "fake error"; }
int nvmlDeviceGetCount_v2(unsigned int *n) { *n = mode == 2 ? 0 : 2; return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d) {
	if (i > 1) return 2;
	*d = &devices[i];
	return 0;
}
int nvmlDeviceGetName(nvmlDevice_t d, char *buf, unsigned int n) {
	strncpy(buf, "Fake NVIDIA H100", n);
	return 0;
}
int nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t d, unsigned long long *mj) {
	if (mode != 0) return 3;
	*mj = energy_mj[d->index];
	return 0;
}
int nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw) {
	*mw = d->index == 0 ? 150000 : 250500;
	return 0;
}
