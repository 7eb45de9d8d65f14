package proc

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the helper when this process dies,
// so that a crashed or timed-out parent leaves no helper behind (holding
// ports, descriptors, or a benchmark lock it inherited).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
