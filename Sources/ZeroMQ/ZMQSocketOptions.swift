/// The options every socket of this project is made with.
///
/// Defaults follow the transport rules of the architecture: `LINGER=0` so closing never
/// waits, explicit high-water marks, a maximum inbound message size, and the kernel's TCP
/// keepalive and retransmission limit so half-open connections are closed.
///
/// ZMTP heartbeats are off by default: libzmq (4.3.4, 4.3.5 and master; issues #3937, #4364,
/// #4767) aborts the process (`!_io_error`) when a heartbeat timer or a queued PING reaches a
/// connection whose input is stopped at the high-water mark after the peer hung up. The
/// actor system's own heartbeats detect failed peers, faster.
public struct ZMQSocketOptions: Sendable, Hashable {
    /// Outbound queue limit per peer, in messages (`ZMQ_SNDHWM`).
    public var sendHighWaterMark: Int32 = 10_000
    /// Inbound queue limit per peer, in messages (`ZMQ_RCVHWM`).
    public var receiveHighWaterMark: Int32 = 10_000
    /// Largest inbound frame in bytes (`ZMQ_MAXMSGSIZE`); a peer sending more is disconnected.
    public var maxMessageSize: Int64 = 64 << 20
    /// ZMTP PING interval (`ZMQ_HEARTBEAT_IVL`); zero (the default) disables ZMTP heartbeats,
    /// which can abort the process (see above).
    public var zmtpHeartbeatInterval: Duration = .zero
    /// How long to wait for a ZMTP PONG before closing the connection (`ZMQ_HEARTBEAT_TIMEOUT`).
    public var zmtpHeartbeatTimeout: Duration = .milliseconds(3000)
    /// TCP keepalive probes on every connection (`ZMQ_TCP_KEEPALIVE`, `_IDLE`, `_INTVL`,
    /// `_CNT`): an idle connection whose peer vanished (a machine powered off, a cable cut) is
    /// closed after `idle + interval × count`; nil leaves the system's settings.
    public var tcpKeepalive: TCPKeepalive? = TCPKeepalive()
    /// How long unacknowledged data may be retransmitted before the kernel closes the
    /// connection (`ZMQ_TCP_MAXRT`); zero leaves the system's default (about 15 minutes).
    public var tcpMaxRetransmitTimeout: Duration = .seconds(30)
    /// Reconnect interval for connecting sockets (`ZMQ_RECONNECT_IVL`).
    public var reconnectInterval: Duration = .milliseconds(100)
    /// Upper bound of the exponential reconnect back-off (`ZMQ_RECONNECT_IVL_MAX`).
    public var reconnectIntervalMax: Duration = .milliseconds(1000)
    /// The routing id a DEALER announces to the ROUTER it connects to (`ZMQ_ROUTING_ID`).
    public var routingID: [UInt8]? = nil
    /// CURVE settings; nil means plain text.
    public var curve: Curve? = nil
    /// An `inproc://` endpoint where libzmq reports this socket's failed handshakes (a peer
    /// with no key or a refused one), for ``ZMQConnectionGuard`` to log; nil for none.
    public var handshakeMonitorEndpoint: String? = nil

    /// CURVE encryption and authentication for one socket.
    public struct Curve: Sendable, Hashable {
        /// This socket's own key pair.
        public var keyPair: ZMQCurveKeyPair
        /// For a connecting socket, the public key of the server it connects to; nil on a server.
        public var serverPublicKey: String?
        /// On a server: the ZAP domain whose handler must approve every client
        /// (`ZMQ_ZAP_DOMAIN` with `ZMQ_ZAP_ENFORCE_DOMAIN`); nil admits any client key.
        public var zapDomain: String?

        public init(keyPair: ZMQCurveKeyPair, serverPublicKey: String? = nil, zapDomain: String? = nil) {
            self.keyPair = keyPair
            self.serverPublicKey = serverPublicKey
            self.zapDomain = zapDomain
        }
    }

    /// TCP keepalive timing.
    public struct TCPKeepalive: Sendable, Hashable {
        public var idle: Duration = .seconds(10)
        public var interval: Duration = .seconds(5)
        public var count: Int32 = 3

        public init() {}
    }

    public init() {}

    public static var `default`: ZMQSocketOptions { ZMQSocketOptions() }
}

extension Duration {
    /// Whole milliseconds, clamped to `Int32` for socket options.
    var zmqMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: milliseconds)
    }
}
