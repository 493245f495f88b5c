import CZeroMQ

/// The socket types this project uses.
public enum ZMQSocketType: Sendable, Hashable {
    case router, dealer, pair
    /// Only for the ZAP handler (``ZMQConnectionGuard``), which RFC 27 makes a REP socket.
    case rep

    var rawValue: Int32 {
        switch self {
        case .router: ZMQ_ROUTER
        case .dealer: ZMQ_DEALER
        case .pair: ZMQ_PAIR
        case .rep: ZMQ_REP
        }
    }
}

/// One libzmq socket, closed when the last reference goes away.
///
/// Not `Sendable`: libzmq sockets are single-owner. In this project every socket lives on the
/// ``ZMQEventLoop`` thread, the one exception being the loop's wake-up sender, which is only
/// touched under the loop's lock. (A class rather than a `~Copyable` struct because the loop
/// keeps its sockets in dictionaries, which need copyable values.)
public final class ZMQSocket {
    let handle: UnsafeMutableRawPointer
    public let type: ZMQSocketType
    /// Keeps the context alive while the socket is: `zmq_ctx_term` waits for every socket of
    /// the context to close, so a context freed first would hang.
    private let context: ZMQContext

    /// Creates a socket and applies `options`.
    /// - Throws: ``ZMQError`` if libzmq refuses the socket or an option.
    public init(context: ZMQContext, type: ZMQSocketType, options: ZMQSocketOptions = .default) throws(ZMQError) {
        guard let handle = zmq_socket(context.handle, type.rawValue) else {
            throw ZMQError.last("zmq_socket")
        }
        self.handle = handle
        self.type = type
        self.context = context
        do {
            try apply(options)
        } catch {
            zmq_close(handle)
            throw error
        }
    }

    deinit {
        zmq_close(handle)
    }

    private func apply(_ options: ZMQSocketOptions) throws(ZMQError) {
        try setOption(ZMQ_LINGER, Int32(0), "ZMQ_LINGER")
        try setOption(ZMQ_SNDHWM, options.sendHighWaterMark, "ZMQ_SNDHWM")
        try setOption(ZMQ_RCVHWM, options.receiveHighWaterMark, "ZMQ_RCVHWM")
        try setOption(ZMQ_MAXMSGSIZE, options.maxMessageSize, "ZMQ_MAXMSGSIZE")
        if type != .pair {
            let interval = options.zmtpHeartbeatInterval.zmqMilliseconds
            if interval > 0 {
                try setOption(ZMQ_HEARTBEAT_IVL, interval, "ZMQ_HEARTBEAT_IVL")
                try setOption(ZMQ_HEARTBEAT_TIMEOUT, options.zmtpHeartbeatTimeout.zmqMilliseconds, "ZMQ_HEARTBEAT_TIMEOUT")
                try setOption(ZMQ_HEARTBEAT_TTL, options.zmtpHeartbeatTimeout.zmqMilliseconds, "ZMQ_HEARTBEAT_TTL")
            }
            if let keepalive = options.tcpKeepalive {
                try setOption(ZMQ_TCP_KEEPALIVE, Int32(1), "ZMQ_TCP_KEEPALIVE")
                try setOption(ZMQ_TCP_KEEPALIVE_IDLE, max(1, Int32(clamping: keepalive.idle.components.seconds)), "ZMQ_TCP_KEEPALIVE_IDLE")
                try setOption(ZMQ_TCP_KEEPALIVE_INTVL, max(1, Int32(clamping: keepalive.interval.components.seconds)), "ZMQ_TCP_KEEPALIVE_INTVL")
                try setOption(ZMQ_TCP_KEEPALIVE_CNT, max(1, keepalive.count), "ZMQ_TCP_KEEPALIVE_CNT")
            }
            let maxRetransmit = options.tcpMaxRetransmitTimeout.zmqMilliseconds
            if maxRetransmit > 0 {
                try setOption(ZMQ_TCP_MAXRT, maxRetransmit, "ZMQ_TCP_MAXRT")
            }
            try setOption(ZMQ_RECONNECT_IVL, options.reconnectInterval.zmqMilliseconds, "ZMQ_RECONNECT_IVL")
            try setOption(ZMQ_RECONNECT_IVL_MAX, options.reconnectIntervalMax.zmqMilliseconds, "ZMQ_RECONNECT_IVL_MAX")
        }
        if type == .router {
            try setOption(ZMQ_ROUTER_MANDATORY, Int32(1), "ZMQ_ROUTER_MANDATORY")
            // A peer that reconnects with the same routing id (same node, new TCP connection)
            // takes over the old pipe instead of being refused.
            try setOption(ZMQ_ROUTER_HANDOVER, Int32(1), "ZMQ_ROUTER_HANDOVER")
        }
        if let routingID = options.routingID {
            try setBytes(ZMQ_ROUTING_ID, routingID, "ZMQ_ROUTING_ID")
        }
        if let curve = options.curve {
            if let server = curve.serverPublicKey {
                try setBytes(ZMQ_CURVE_SERVERKEY, Array(server.utf8) + [0], "ZMQ_CURVE_SERVERKEY")
                try setBytes(ZMQ_CURVE_PUBLICKEY, Array(curve.keyPair.publicKey.utf8) + [0], "ZMQ_CURVE_PUBLICKEY")
                try setBytes(ZMQ_CURVE_SECRETKEY, Array(curve.keyPair.secretKey.utf8) + [0], "ZMQ_CURVE_SECRETKEY")
            } else {
                try setOption(ZMQ_CURVE_SERVER, Int32(1), "ZMQ_CURVE_SERVER")
                try setBytes(ZMQ_CURVE_SECRETKEY, Array(curve.keyPair.secretKey.utf8) + [0], "ZMQ_CURVE_SECRETKEY")
                if let domain = curve.zapDomain {
                    // Every connection is checked by the ZAP handler of this domain; with no
                    // handler running, libzmq refuses them all (fail closed).
                    try setBytes(ZMQ_ZAP_DOMAIN, Array(domain.utf8), "ZMQ_ZAP_DOMAIN")
                    try setOption(zapEnforceDomain, Int32(1), "ZMQ_ZAP_ENFORCE_DOMAIN")
                }
            }
        }
        if let monitor = options.handshakeMonitorEndpoint {
            let events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
            guard zmq_socket_monitor(handle, monitor, events) == 0 else { throw ZMQError.last("zmq_socket_monitor \(monitor)") }
        }
    }

    /// Sets an integer socket option.
    public func setOption<T: FixedWidthInteger>(_ option: Int32, _ value: T, _ name: String) throws(ZMQError) {
        var value = value
        let rc = withUnsafeBytes(of: &value) { raw in
            zmq_setsockopt(handle, option, raw.baseAddress, raw.count)
        }
        guard rc == 0 else { throw ZMQError(.badOption, "setting \(name) failed: \(String(cString: zmq_strerror(zmq_errno())))", errno: zmq_errno()) }
    }

    /// Sets a binary or string socket option.
    public func setBytes(_ option: Int32, _ bytes: [UInt8], _ name: String) throws(ZMQError) {
        let rc = bytes.withUnsafeBytes { raw in
            zmq_setsockopt(handle, option, raw.baseAddress, raw.count)
        }
        guard rc == 0 else { throw ZMQError(.badOption, "setting \(name) failed: \(String(cString: zmq_strerror(zmq_errno())))", errno: zmq_errno()) }
    }

    /// Binds the socket, resolving a wildcard port.
    /// - Parameter endpoint: For example `tcp://127.0.0.1:*` or `inproc://wake`.
    /// - Returns: The bound endpoint (`ZMQ_LAST_ENDPOINT`), for example `tcp://127.0.0.1:40123`.
    /// - Throws: ``ZMQError`` if the address is invalid or in use.
    @discardableResult
    public func bind(_ endpoint: String) throws(ZMQError) -> String {
        guard zmq_bind(handle, endpoint) == 0 else {
            var error = ZMQError.last("bind \(endpoint)")
            if error.code == .other { error.code = .badEndpoint }
            throw error
        }
        return lastEndpoint ?? endpoint
    }

    /// Connects the socket; libzmq connects (and reconnects) in the background.
    /// - Throws: ``ZMQError`` if the endpoint is malformed.
    public func connect(_ endpoint: String) throws(ZMQError) {
        guard zmq_connect(handle, endpoint) == 0 else {
            var error = ZMQError.last("connect \(endpoint)")
            if error.code == .other { error.code = .badEndpoint }
            throw error
        }
    }

    /// The endpoint most recently bound or connected.
    public var lastEndpoint: String? {
        var buffer = [CChar](repeating: 0, count: 1024)
        var size = buffer.count
        guard zmq_getsockopt(handle, ZMQ_LAST_ENDPOINT, &buffer, &size) == 0 else { return nil }
        return String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Sends one multipart message without blocking.
    ///
    /// Multipart delivery is atomic: once the first frame is accepted, the rest are too.
    /// - Throws: ``ZMQError`` with `.wouldBlock` at the high-water mark (nothing was sent),
    ///   `.hostUnreachable` for an unknown ROUTER peer.
    public func send(_ frames: [[UInt8]]) throws(ZMQError) {
        for (index, frame) in frames.enumerated() {
            let more = index < frames.count - 1
            let flags = ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0)
            let rc = frame.withUnsafeBytes { raw in
                zmq_send(handle, raw.baseAddress, raw.count, flags)
            }
            if rc < 0 { throw ZMQError.last("zmq_send") }
        }
    }

    /// Receives one whole multipart message without blocking, through `zmq_msg_t` (so frames
    /// of any size arrive whole).
    /// - Returns: The frames, or nil when nothing is waiting.
    /// - Throws: ``ZMQError`` on any failure other than `EAGAIN`.
    public func receive() throws(ZMQError) -> [[UInt8]]? {
        try receiveWithUserID()?.frames
    }

    /// Receives like ``receive()``, and also returns the connection's `User-Id` property: on a
    /// CURVE server, the user id the ZAP handler gave the client that sent the message (see
    /// ``ZMQConnectionGuard/Policy/userIDs``); nil without one.
    public func receiveWithUserID() throws(ZMQError) -> (frames: [[UInt8]], userID: String?)? {
        var frames: [[UInt8]] = []
        var userID: String?
        var message = zmq_msg_t()
        while true {
            zmq_msg_init(&message)
            defer { zmq_msg_close(&message) }
            let flags: Int32 = frames.isEmpty ? ZMQ_DONTWAIT : 0
            if zmq_msg_recv(&message, handle, flags) < 0 {
                if frames.isEmpty && zmq_errno() == EAGAIN { return nil }
                throw ZMQError.last("zmq_msg_recv")
            }
            // A ROUTER's routing-id frame is its own and carries no properties: take the first
            // frame that does.
            if userID == nil, let property = zmq_msg_gets(&message, "User-Id") {
                let text = String(cString: property)
                userID = text.isEmpty ? nil : text
            }
            let size = zmq_msg_size(&message)
            if size == 0 {
                frames.append([])
            } else if let data = zmq_msg_data(&message) {
                frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            } else {
                frames.append([])
            }
            if zmq_msg_more(&message) == 0 { return (frames, userID) }
        }
    }

    /// Blocks until a message can be read or `timeoutMs` passes. For simple single-socket
    /// programs on their own thread (benchmark peers, test probes), never on the Swift pool.
    /// - Returns: Whether a message is waiting.
    public func waitReadable(timeoutMs: Int) -> Bool {
        var item = zmq_pollitem_t(socket: handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)
        return zmq_poll(&item, 1, timeoutMs) > 0 && item.revents & Int16(ZMQ_POLLIN) != 0
    }
}

/// `ZMQ_ZAP_ENFORCE_DOMAIN` (libzmq 4.3): zmq.h declares it only under `ZMQ_BUILD_DRAFT_API`,
/// though the option is stable and honoured by every 4.3 library.
private let zapEnforceDomain: Int32 = 93
