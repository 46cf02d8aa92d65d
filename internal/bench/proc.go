package bench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of /proc/PID/stat's CPU times
// (100 on every architecture Linux exposes it for).
const clockTick = 100

// statusField reads a "Name: value" line of /proc/PID/status.
func statusField(pid int, name string) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && k == name {
			return strings.TrimSpace(v), nil
		}
	}
	if err := s.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("bench: no %s in /proc/%d/status", name, pid)
}

// memoryField reads a "kB" field of /proc/PID/status in bytes.
func memoryField(pid int, name string) (int64, error) {
	v, err := statusField(pid, name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(v, " kB"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bench: %s %q: %w", name, v, err)
	}
	return n << 10, nil
}

// PeakRSS is the process's peak resident set size (VmHWM), in bytes.
func PeakRSS(pid int) (int64, error) { return memoryField(pid, "VmHWM") }

// RSS is the process's resident set size now (VmRSS), in bytes.
func RSS(pid int) (int64, error) { return memoryField(pid, "VmRSS") }

// CPUs counts the CPUs the process may run on (Cpus_allowed_list).
func CPUs(pid int) (int, error) {
	v, err := statusField(pid, "Cpus_allowed_list")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range strings.Split(v, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0, fmt.Errorf("bench: Cpus_allowed_list %q", v)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				return 0, fmt.Errorf("bench: Cpus_allowed_list %q", v)
			}
		}
		n += b - a + 1
	}
	return n, nil
}

// CPUTime is the user plus system CPU time the process has used.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is parenthesised and may hold spaces:
	// count fields after its closing parenthesis. utime and stime are
	// fields 14 and 15.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bench: bad /proc/%d/stat", pid)
	}
	return time.Duration(utime+stime) * time.Second / clockTick, nil
}

// Children lists the process's children (nginx's workers under its
// master), from /proc/PID/task/*/children: each thread's file lists the
// children it forked. It needs CONFIG_PROC_CHILDREN, which the common
// distribution kernels have.
func Children(pid int) ([]int, error) {
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("bench: no /proc/%d/task/*/children", pid)
	}
	var kids []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for _, v := range strings.Fields(string(b)) {
			n, err := strconv.Atoi(v)
			if err != nil {
				return nil, fmt.Errorf("bench: %s: %q", f, v)
			}
			kids = append(kids, n)
		}
	}
	slices.Sort(kids)
	return slices.Compact(kids), nil
}

// SelfCPUTime is the CPU time this process has used.
func SelfCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// MachineCPU reads the machine's CPU time from /proc/stat: busy (every
// state but idle and iowait) and total, over every CPU.
func MachineCPU() (busy, total time.Duration, err error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, 0, errors.New("bench: unexpected /proc/stat")
	}
	var sum, idle int64
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, 0, errors.New("bench: unexpected /proc/stat")
		}
		// guest and guest_nice (fields 9 and 10) are already in user.
		if i >= 8 {
			break
		}
		sum += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(sum-idle) * time.Second / clockTick, time.Duration(sum) * time.Second / clockTick, nil
}
