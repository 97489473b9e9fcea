import CHotplug
import Glibc

/// hotplugd's event threads run behind the kernel's hot-add, not in the middle of it.
///
/// A memory block's or CPU's `add` uevent is sent from inside the kernel's add, by the worker
/// that adds (ACPI's hotplug work, virtio-mem's), which holds the device hotplug lock. Under the
/// default policy the thread it wakes preempts that worker in the middle of the add (wake-up
/// preemption), and a write to the new device's `state` or `online` file that then finds the
/// lock held does not wait for it: the kernel sleeps 5 ms, 12 to 16 ms at HZ=250, and starts the
/// write again (`lock_device_hotplug_sysfs`), where the worker, let go on, would have finished
/// its add in a millisecond (kernel traces of a virtio-mem grow in a 1-vCPU guest). The monitor
/// also waits for the adds to stop before it hands one on (`PendingEvents.addQuiet`).
///
/// SCHED_BATCH takes wake-up preemption away and nothing else: the thread keeps its nice value
/// and its share of the CPU, and runs once the worker sleeps or its time slice ends, when the
/// add it was woken by is usually over. A thread already under another policy (a real-time one
/// given by the administrator) keeps it.
public enum ThreadScheduling {
    /// Puts the calling thread under SCHED_BATCH if it is under the default policy. Returns the
    /// errno when the change was refused (nothing else changes then), nil otherwise.
    @discardableResult
    public static func yieldToKernelWork() -> Int32? {
        guard sched_getscheduler(0) == SCHED_OTHER else { return nil }
        var parameters = sched_param(sched_priority: 0)
        return sched_setscheduler(0, chotplug_SCHED_BATCH, &parameters) == 0 ? nil : errno
    }

    /// Whether the calling thread runs under SCHED_BATCH.
    public static var yieldsToKernelWork: Bool { sched_getscheduler(0) == chotplug_SCHED_BATCH }
}
