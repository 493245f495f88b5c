/// Names a socket owned by a ``ZMQEventLoop``; the socket itself never leaves the loop's thread.
public struct ZMQSocketID: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int

    public init(rawValue: Int) { self.rawValue = rawValue }

    public var description: String { "socket#\(rawValue)" }
}

/// Something the event loop reports to Swift concurrency.
public enum ZMQEvent: Sendable {
    /// A whole multipart message arrived. On a ROUTER the first frame is the sender's routing
    /// id; `userID` is the sender's user id when a ZAP handler authenticated it (CURVE), else nil.
    case message(ZMQSocketID, frames: [[UInt8]], userID: String?)
    /// A queued message could not be sent and was dropped: the ROUTER peer is gone
    /// (`hostUnreachable`) or the peer stopped reading and its send queue is full (`wouldBlock`).
    /// `destination` is the routing id for a ROUTER, nil otherwise.
    case sendFailed(ZMQSocketID, destination: [UInt8]?, error: ZMQError)
}
