import CZeroMQ
import Foundation
import Logging
import Synchronization

/// Watches who connects to a context's servers: it logs every failed handshake (a peer that is
/// not ZeroMQ, sends garbage, or offers no or the wrong CURVE key), and, given a ``Policy``, is
/// the context's ZAP handler (ZeroMQ RFC 27), admitting only CURVE clients whose public key is
/// on an allow-list and refusing (and logging) the rest.
///
/// It runs on a thread of its own: libzmq asks the ZAP handler synchronously during each
/// handshake, over the context's `inproc://zeromq.zap.01` REP socket; failed handshakes come
/// from the servers' monitors (``ZMQSocketOptions/handshakeMonitorEndpoint``). Refusals are
/// logged at most 20 per 10 seconds, then summarised, so a flood cannot flood the log. One per
/// context; start it before the servers bind, so no connection is accepted before it answers.
public final class ZMQConnectionGuard: Sendable {
    /// Who is admitted.
    public struct Policy: Sendable, Hashable {
        /// The ZAP domain the servers name (`ZMQ_ZAP_DOMAIN`); other domains are refused.
        public var domain: String
        /// Z85 public keys (40 characters) of the clients admitted.
        public var allowedPublicKeys: Set<String>
        /// The user id each admitted key is given (ZAP's `User-Id`, which every message from
        /// that connection carries: see ``ZMQSocket/receiveWithUserID()``); a key not listed
        /// gets itself.
        public var userIDs: [String: String]

        public init(domain: String, allowedPublicKeys: Set<String>, userIDs: [String: String] = [:]) {
            self.domain = domain
            self.allowedPublicKeys = allowedPublicKeys
            self.userIDs = userIDs
        }
    }

    /// How many connection attempts were refused so far.
    public var refusals: Int { flags.refused.load(ordering: .relaxed) }

    /// Shared with the handler's thread.
    private final class Flags: Sendable {
        let running = Atomic<Bool>(true)
        let refused = Atomic<Int>(0)
    }

    private let flags = Flags()
    private let stopped = DispatchSemaphore(value: 0)

    /// Starts watching (and, with a policy, binds the ZAP endpoint in `loop`'s context).
    /// - Parameters:
    ///   - policy: Who is admitted; nil for no ZAP handler (plain sockets).
    ///   - monitorEndpoints: Handshake monitor endpoints of the servers, to log failures.
    /// - Throws: ``ZMQError`` if the ZAP endpoint is taken (another handler in this context).
    public init(loop: ZMQEventLoop, policy: Policy?, monitorEndpoints: [String], logger: Logger) throws {
        let context = loop.zmqContext
        let ready = DispatchSemaphore(value: 0)
        let startError = Mutex<ZMQError?>(nil)
        let flags = self.flags, stopped = self.stopped
        let thread = Thread {
            defer { stopped.signal() }
            var handler: ZMQSocket?
            var monitors: [ZMQSocket] = []
            do throws(ZMQError) {
                if policy != nil {
                    let socket = try ZMQSocket(context: context, type: .rep)
                    try socket.bind("inproc://zeromq.zap.01")
                    handler = socket
                }
                for endpoint in monitorEndpoints {
                    let monitor = try ZMQSocket(context: context, type: .pair)
                    try monitor.connect(endpoint)
                    monitors.append(monitor)
                }
            } catch {
                startError.withLock { $0 = error }
                ready.signal()
                return
            }
            ready.signal()
            let sockets = (handler.map { [$0] } ?? []) + monitors
            let monitorOffset = handler == nil ? 0 : 1
            var items = sockets.map { zmq_pollitem_t(socket: $0.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0) }
            var refusalLog = RefusalLog(logger: logger)
            while flags.running.load(ordering: .relaxed) {
                refusalLog.rollWindow()
                guard zmq_poll(&items, Int32(items.count), 100) > 0 else { continue }
                if let handler, let policy, items[0].revents & Int16(ZMQ_POLLIN) != 0, let request = try? handler.receive() {
                    let decision = Self.decide(request, policy: policy)
                    if decision.admitted {
                        logger.debug("Admitted a CURVE client", metadata: ["peer.address": "\(decision.address)", "peer.key": "\(decision.key)"])
                    } else {
                        flags.refused.add(1, ordering: .relaxed)
                        refusalLog.refused(["peer.address": "\(decision.address)", "peer.key": "\(decision.key)", "reason": "\(decision.reason)"])
                    }
                    try? handler.send(decision.reply)
                }
                for (index, monitor) in monitors.enumerated() where items[index + monitorOffset].revents & Int16(ZMQ_POLLIN) != 0 {
                    guard let event = try? monitor.receive(), let first = event.first, first.count >= 6 else { continue }
                    let code = Int32(first[0]) | Int32(first[1]) << 8
                    let endpoint = event.count > 1 ? String(decoding: event[1], as: UTF8.self) : "?"
                    // Refusals by the ZAP handler are logged above; these are the others.
                    guard code != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH else { continue }
                    flags.refused.add(1, ordering: .relaxed)
                    let reason = code == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
                        ? "handshake failed: not a ZeroMQ peer, garbage, or (with CURVE) no key or the wrong server key"
                        : "handshake failed: the peer hung up (not a ZeroMQ peer, or a security mismatch)"
                    refusalLog.refused(["server": "\(endpoint)", "reason": "\(reason)"])
                }
            }
        }
        thread.name = "zmq-zap"
        thread.start()
        ready.wait()
        if let error = startError.withLock({ $0 }) {
            flags.running.store(false, ordering: .relaxed)
            throw error
        }
    }

    /// Stops answering and closes its sockets (needed before the context can end). Idempotent.
    public func stop() {
        guard flags.running.exchange(false, ordering: .relaxed) else { return }
        stopped.wait()
    }

    /// Logs refusals, at most ``limit`` per window, then one summary line per window.
    struct RefusalLog {
        let logger: Logger
        static let limit = 20
        static let window: Duration = .seconds(10)
        var windowStart = ContinuousClock.now
        var logged = 0
        var suppressed = 0

        mutating func refused(_ metadata: Logger.Metadata) {
            rollWindow()
            guard logged < Self.limit else {
                suppressed += 1
                return
            }
            logged += 1
            logger.warning("Refused a connection", metadata: metadata)
        }

        mutating func rollWindow() {
            guard ContinuousClock.now - windowStart >= Self.window else { return }
            if suppressed > 0 {
                logger.warning("Refused more connections than are logged", metadata: ["refused.unlogged": "\(suppressed)", "window": "\(Self.window)"])
            }
            windowStart = .now
            logged = 0
            suppressed = 0
        }
    }

    /// What the handler answers to one ZAP request.
    struct Decision {
        var admitted: Bool
        var reason: String
        var address: String
        var key: String
        var reply: [[UInt8]]
    }

    /// Decides on one ZAP request (frames: version, request id, domain, address, routing id,
    /// mechanism, credentials...).
    static func decide(_ request: [[UInt8]], policy: Policy) -> Decision {
        func text(_ index: Int) -> String { index < request.count ? String(decoding: request[index], as: UTF8.self) : "" }
        let requestID = request.count > 1 ? request[1] : []
        func answer(_ admitted: Bool, _ reason: String, key: String = "-") -> Decision {
            let userID = admitted ? policy.userIDs[key] ?? key : ""
            let reply: [[UInt8]] = [Array("1.0".utf8), requestID, Array((admitted ? "200" : "400").utf8), Array(reason.utf8),
                                    Array(userID.utf8), []]
            return Decision(admitted: admitted, reason: reason, address: text(3), key: key, reply: reply)
        }
        guard request.count >= 6, text(0) == "1.0" else { return answer(false, "malformed ZAP request") }
        guard text(2) == policy.domain else { return answer(false, "domain '\(text(2))' is not '\(policy.domain)'") }
        guard text(5) == "CURVE", request.count >= 7, request[6].count == 32 else { return answer(false, "mechanism \(text(5)) is not CURVE") }
        let key = z85(request[6])
        guard policy.allowedPublicKeys.contains(key) else { return answer(false, "public key not in the allow-list", key: key) }
        return answer(true, "OK", key: key)
    }

    /// The Z85 text of a 32-byte key.
    static func z85(_ bytes: [UInt8]) -> String {
        var text = [CChar](repeating: 0, count: bytes.count * 5 / 4 + 1)
        _ = bytes.withUnsafeBufferPointer { zmq_z85_encode(&text, $0.baseAddress, $0.count) }
        return String(decoding: text.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
