import Wire

/// The identity of a distributed actor in a ``ClusterSystem``: its node plus a name unique on
/// that node.
public struct ClusterActorID: Hashable, Sendable, Codable, CustomStringConvertible {
    public var node: NodeIdentity
    public var name: String

    public init(node: NodeIdentity, name: String) {
        self.node = node
        self.name = name
    }

    public var description: String { "\(name)@\(node)" }
}

extension ClusterActorID {
    init(wire: WireActorIdentity) throws(ClusterError) {
        guard wire.hasNode else { throw ClusterError(.protocolViolation, "ActorIdentity.node is missing") }
        guard !wire.name.isEmpty else { throw ClusterError(.protocolViolation, "ActorIdentity.name is empty") }
        self.init(node: try NodeIdentity(wire: wire.node), name: wire.name)
    }

    func toWire() -> WireActorIdentity {
        var wire = WireActorIdentity()
        wire.node = node.toWire()
        wire.name = name
        return wire
    }
}
