import HotplugCore

import struct SystemPackage.Errno
import struct SystemPackage.FileDescriptor

/// Readings of whole devices, built from single attributes.
extension SysfsAccess {
    /// Whether the device is online, offline, going offline, or gone.
    ///
    /// A CPU without an `online` attribute (usually cpu0, which the kernel cannot offline) is online.
    public func observe(_ device: DeviceID) throws(SysfsError) -> ObservedState {
        do throws(SysfsError) {
            let text = try read(device, device.kind.onlineAttribute)
            guard let state = ObservedState(attribute: text) else {
                throw SysfsError(
                    path: "\(root)\(device.devpath)/\(device.kind.onlineAttribute)", operation: "parse",
                    errno: .invalidArgument)
            }
            return state
        } catch  where error.errno == .noSuchFileOrDirectory {
            // A CPU without an `online` attribute is one the kernel cannot offline: online, if it is there.
            guard device.kind == .cpu else { return .absent }
            do throws(SysfsError) {
                _ = try entries(device)
                return .online
            } catch  where error.errno == .noSuchFileOrDirectory {
                return .absent
            }
        }
    }

    /// The NUMA node from the device's `nodeN` link, if it has one.
    public func node(of device: DeviceID) throws(SysfsError) -> Int? {
        for name in try entries(device) where name.hasPrefix("node") {
            if let node = Int(name.dropFirst(4)), node >= 0 { return node }
        }
        return nil
    }

    /// Everything the memory policy needs to know about one block.
    ///
    /// `valid_zones` of an offline block is read only once the block has its `nodeN` link, or when
    /// `zonesWithoutNode` says so: Linux 6.1's `valid_zones_show` looks up the block's node, which is
    /// NUMA_NO_NODE between the `add` uevent and the block's linking to its node, and that lookup
    /// oopses the kernel (zone_for_pfn_range). Until then `validZones` stays empty. An online
    /// block's zone is read from its pages and is always safe to read.
    public func memoryBlock(_ id: DeviceID, zonesWithoutNode: Bool = false) throws(SysfsError) -> MemoryBlock {
        try memoryBlockAndState(id, zonesWithoutNode: zonesWithoutNode).block
    }

    /// `memoryBlock` and the state it was read in (which tells `going-offline` from `offline`).
    /// A scan passes `nodes` from `nodeMembership()` so that no block's directory is listed.
    public func memoryBlockAndState(
        _ id: DeviceID, zonesWithoutNode: Bool = false, nodes: [DeviceID: Int]? = nil
    ) throws(SysfsError) -> (block: MemoryBlock, state: ObservedState) {
        let state = try observe(id)
        let node = if let nodes { nodes[id] } else { try node(of: id) }
        let zones =
            node != nil || state == .online || zonesWithoutNode
            ? Zone.list(try read(id, "valid_zones")) : []
        let block = MemoryBlock(
            id: id, node: node, validZones: zones, firmwareNode: try link(id, "firmware_node"),
            online: state == .online)
        return (block, state)
    }

    /// `block_size_bytes`, which the kernel writes in hex without a prefix.
    public func memoryBlockSize() throws(SysfsError) -> Int {
        let text = try read(.memory, path: "block_size_bytes")
        guard let size = Int(text, radix: 16), size > 0 else {
            throw SysfsError(
                path: "\(root)/devices/system/memory/block_size_bytes", operation: "parse", errno: .invalidArgument)
        }
        return size
    }

    /// What the kernel itself does with new memory blocks (`auto_online_blocks`); nil on kernels
    /// without the attribute.
    public func autoOnlineBlocks() throws(SysfsError) -> String? {
        do {
            return try read(.memory, path: "auto_online_blocks")
        } catch  where error.errno == .noSuchFileOrDirectory {
            return nil
        }
    }
}
