/*
 * Keeps one small KVM VM (irqchip and one vCPU that never runs) open for the outer lab VM's lifetime.
 * Enabling SVM for a first VM, and disabling it after the last, makes the lab kernel patch its own code on
 * every CPU; under TCG that occasionally livelocks the lab. With this VM alive it happens once, at start.
 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define KVM_CREATE_VM 0xAE01
#define KVM_CREATE_IRQCHIP 0xAE60
#define KVM_CREATE_VCPU 0xAE41

int main(void)
{
    int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm < 0) { perror("kvm-hold: /dev/kvm"); return 1; }
    int vm = ioctl(kvm, KVM_CREATE_VM, 0);
    if (vm < 0) { perror("kvm-hold: KVM_CREATE_VM"); return 1; }
    if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) { perror("kvm-hold: KVM_CREATE_IRQCHIP"); return 1; }
    if (ioctl(vm, KVM_CREATE_VCPU, 0) < 0) { perror("kvm-hold: KVM_CREATE_VCPU"); return 1; }
    for (;;) pause();
}
