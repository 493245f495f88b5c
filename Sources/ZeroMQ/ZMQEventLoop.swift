import CZeroMQ
import Foundation
import Logging
import Synchronization

/// One dedicated OS thread that owns every socket of a node and moves frames between them and
/// Swift concurrency.
///
/// libzmq sockets are not thread-safe, and a blocking `zmq_poll` must not occupy the
/// cooperative thread pool, so all socket work happens here. Tasks hand commands (open, send,
/// close) to the thread through a locked queue plus a one-byte `inproc://` wake-up; received
/// messages reach Swift concurrency through ``events``.
///
/// Flow control both ways:
/// - Outbound: sends never block. A message refused at the high-water mark waits in a bounded
///   per-destination queue and is retried; past ``Configuration/maxQueuedBytesPerDestination``
///   it is dropped and reported as ``ZMQEvent/sendFailed(_:destination:error:)``.
/// - Inbound: when ``Configuration/maxBufferedEvents`` events wait unconsumed, the thread stops
///   reading, so TCP and libzmq's high-water marks push back on senders instead of memory growing.
///
/// Thread-safety: all methods may be called from any thread or task.
public final class ZMQEventLoop: Sendable {
    /// Tuning knobs of the loop.
    public struct Configuration: Sendable, Hashable {
        /// Events buffered for Swift before the loop stops reading sockets.
        public var maxBufferedEvents: Int = 50_000
        /// Bytes queued for one unresponsive destination before new messages to it are dropped.
        public var maxQueuedBytesPerDestination: Int = 256 << 20
        /// Messages read from one socket before the loop looks at the others (fairness).
        public var readBatch: Int = 512
        /// libzmq background I/O threads.
        public var ioThreads: Int = 1

        public init() {}

        public static var `default`: Configuration { Configuration() }
    }

    enum Command {
        case open(ZMQSocketID, ZMQSocketType, ZMQSocketOptions, bind: String?, connect: String?,
                  completion: @Sendable (Result<String, ZMQError>) -> Void)
        case send(ZMQSocketID, [[UInt8]])
        case close(ZMQSocketID)
        case deliver(@Sendable (ZMQEvent) -> Void)
        case run(UnownedJob)
        case shutdown
    }

    struct Shared {
        var commands: [Command] = []
        var signalled = false
        var stopped = false
        /// The sending end of the wake-up pair. Only ever used while holding the lock, which
        /// serialises access and provides the full memory barrier libzmq asks for when a
        /// socket is used from more than one thread.
        var wakeSender: ZMQSocket?
    }

    public let configuration: Configuration
    /// Everything the sockets receive, plus dropped-send reports.
    public let events: ZMQEventStream

    let logger: Logger
    private let context: ZMQContext
    fileprivate let shared = Mutex(Shared())
    private let nextSocketID = Atomic<Int>(1)
    /// `pthread_self()` of the loop's thread, once it runs.
    private let loopThread = Atomic<UInt>(0)
    private let buffered: ZMQEventStream.Counter
    private let queuedBytes = Atomic<Int>(0)
    /// Monotonic nanoseconds at which the thread last left `zmq_poll` for work, 0 while it polls.
    private let busySince = Atomic<UInt64>(0)
    /// Whether the last turn left messages unread (a socket gave a whole read batch).
    private let backlogged = Atomic<Bool>(false)
    private let continuation: AsyncStream<ZMQEvent>.Continuation
    private let exited = DispatchSemaphore(value: 0)

    /// Starts the loop's thread.
    /// - Parameters:
    ///   - name: Thread name, for debuggers and `top -H`.
    ///   - configuration: Buffering limits.
    ///   - logger: Used at debug and trace level only.
    /// - Throws: ``ZMQError`` if the context or the wake-up sockets cannot be made.
    public init(name: String = "zmq-io", configuration: Configuration = .default, logger: Logger) throws {
        self.configuration = configuration
        self.logger = logger
        self.context = try ZMQContext(ioThreads: configuration.ioThreads)
        let (stream, continuation) = AsyncStream<ZMQEvent>.makeStream()
        self.continuation = continuation
        self.buffered = ZMQEventStream.Counter()
        self.events = ZMQEventStream(base: stream, counter: buffered)

        let wakeAddress = "inproc://wake-\(UInt64.random(in: 1 ... .max))"
        let receiver = try ZMQSocket(context: context, type: .pair, options: .default)
        try receiver.bind(wakeAddress)
        let context = self.context
        try shared.withLock { state throws(ZMQError) in
            let sender = try ZMQSocket(context: context, type: .pair, options: .default)
            try sender.connect(wakeAddress)
            state.wakeSender = sender
        }

        let box = UncheckedTransfer(receiver)
        let thread = Thread { [self] in
            guard let receiver = box.take() else {
                // Cannot happen (the box is taken once); end cleanly so shutdown() returns.
                continuation.finish()
                exited.signal()
                return
            }
            self.run(wakeReceiver: receiver)
        }
        thread.name = name
        thread.start()
    }

    /// The loop's libzmq context, for the few sockets that live on threads of their own and
    /// talk to the loop's sockets in process (the ZAP handler, ``ZMQConnectionGuard``).
    public var zmqContext: ZMQContext { context }

    /// Bytes waiting in the loop's own send queues (messages libzmq refused at the high-water
    /// mark), over all destinations; each destination holds at most
    /// ``Configuration/maxQueuedBytesPerDestination``.
    public var queuedSendBytes: Int { queuedBytes.load(ordering: .relaxed) }

    /// Events received and not yet taken from ``events``: how far behind the consumer is.
    public var bufferedEventCount: Int { buffered.value }

    /// How long the thread may work between polls before it counts as behind.
    public static let busyLimit: Duration = .milliseconds(50)

    /// Whether messages may be waiting unread: events not yet consumed from ``events``, a turn
    /// that left a socket with more to read, or the thread busy (running jobs or handlers) for
    /// longer than ``busyLimit`` since it last polled. A failure detector uses it not to mistake
    /// its own backlog for a peer's silence.
    public var isBehind: Bool {
        if buffered.value > 0 || backlogged.load(ordering: .relaxed) { return true }
        let since = busySince.load(ordering: .relaxed)
        return since != 0 && monotonicNanoseconds() &- since > UInt64(Self.busyLimit.components.attoseconds / 1_000_000_000)
    }

    /// Opens a socket and binds it.
    /// - Returns: The socket's id and the bound endpoint with any wildcard port resolved.
    /// - Throws: ``ZMQError`` if the endpoint is invalid or in use, or the loop is stopped.
    public func bind(_ type: ZMQSocketType, to endpoint: String, options: ZMQSocketOptions = .default)
        async throws -> (ZMQSocketID, String)
    {
        let id = ZMQSocketID(rawValue: nextSocketID.wrappingAdd(1, ordering: .relaxed).oldValue)
        let bound = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String, any Error>) in
            enqueue(.open(id, type, options, bind: endpoint, connect: nil) { result in
                continuation.resume(with: result.mapError { $0 as any Error })
            })
        }
        return (id, bound)
    }

    /// Opens a socket and connects it; libzmq keeps reconnecting in the background.
    /// - Returns: The socket's id. Messages may be sent at once; they wait for the connection.
    /// - Throws: ``ZMQError`` if the endpoint is malformed or the loop is stopped.
    public func connect(_ type: ZMQSocketType, to endpoint: String, options: ZMQSocketOptions = .default)
        async throws -> ZMQSocketID
    {
        let id = ZMQSocketID(rawValue: nextSocketID.wrappingAdd(1, ordering: .relaxed).oldValue)
        _ = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String, any Error>) in
            enqueue(.open(id, type, options, bind: nil, connect: endpoint) { result in
                continuation.resume(with: result.mapError { $0 as any Error })
            })
        }
        return id
    }

    /// Opens a socket and connects it without waiting: the returned id may be used at once, and
    /// commands run in order, so messages sent next go out on this socket.
    /// - Parameter onFailure: Called on the loop's thread if the socket cannot be made.
    public func connectNow(
        _ type: ZMQSocketType, to endpoint: String, options: ZMQSocketOptions = .default,
        onFailure: @escaping @Sendable (ZMQError) -> Void
    ) -> ZMQSocketID {
        let id = ZMQSocketID(rawValue: nextSocketID.wrappingAdd(1, ordering: .relaxed).oldValue)
        enqueue(.open(id, type, options, bind: nil, connect: endpoint) { result in
            if case let .failure(error) = result { onFailure(error) }
        })
        return id
    }

    /// Queues one multipart message for sending; never blocks. For a ROUTER the first frame is
    /// the destination's routing id. Failures arrive as ``ZMQEvent/sendFailed(_:destination:error:)``.
    public func send(_ frames: [[UInt8]], on socket: ZMQSocketID) {
        enqueue(.send(socket, frames))
    }

    /// Hands every later event to `handler`, called on the loop's thread, instead of ``events``.
    ///
    /// For latency-critical consumers that only do brief, non-blocking work per event (decode,
    /// resume a continuation, start a task): it saves the hop from the loop's thread into the
    /// task that would iterate ``events``. The handler must never block. Call it before opening
    /// sockets so that no event goes to the stream.
    public func deliverEvents(to handler: @escaping @Sendable (ZMQEvent) -> Void) {
        enqueue(.deliver(handler))
    }

    /// Closes a socket (with `LINGER=0`: unsent messages are discarded).
    public func close(_ socket: ZMQSocketID) {
        enqueue(.close(socket))
    }

    /// Closes every socket on the loop's thread, ends ``events`` and waits for the thread to
    /// exit. Safe to call more than once, from any thread.
    public func shutdown() {
        let first = shared.withLock { state -> Bool in
            guard !state.stopped else { return false }
            state.commands.append(.shutdown)
            signal(&state)
            state.stopped = true
            return true
        }
        if first { exited.wait() }
    }

    /// Whether the caller runs on the loop's own thread (for example in a task that prefers
    /// the loop as its executor).
    public var isLoopThread: Bool { loopThread.load(ordering: .relaxed) == UInt(pthread_self()) }

    private func enqueue(_ command: Command) {
        // On the loop's thread no wake-up is needed: the loop looks at its queue again before
        // it next sleeps.
        let local = isLoopThread
        let accepted = shared.withLock { state -> Bool in
            guard !state.stopped else { return false }
            state.commands.append(command)
            if !local { signal(&state) }
            return true
        }
        if !accepted, case .open(_, _, _, _, _, let completion) = command {
            completion(.failure(ZMQError(.terminated, "event loop is shut down")))
        }
    }

    fileprivate func signal(_ state: inout Shared) {
        guard !state.signalled, let sender = state.wakeSender else { return }
        state.signalled = true
        do {
            try sender.send([[0]])
        } catch {
            // The pair's queue holds at most one byte at a time (`signalled`), so this only
            // fails if the context is gone; the loop then exits on its own.
            state.signalled = false
        }
    }

    // MARK: - The loop's thread

    private func run(wakeReceiver: ZMQSocket) {
        loopThread.store(UInt(pthread_self()), ordering: .relaxed)
        var loop = LoopState(configuration: configuration, logger: logger, continuation: continuation)
        var running = true
        while running {
            let queuedLocally = shared.withLock { !$0.commands.isEmpty }
            let reading = buffered.value < configuration.maxBufferedEvents
            let pollTimeout = queuedLocally ? 0 : (loop.hasQueuedSends || !reading ? 1 : 250)
            busySince.store(0, ordering: .relaxed)
            let readable = loop.poll(wake: wakeReceiver, readSockets: reading, timeoutMs: pollTimeout)
            busySince.store(monotonicNanoseconds(), ordering: .relaxed)
            if readable.wake {
                while (try? wakeReceiver.receive()) != nil {}
            }
            var leftUnread = false
            for id in readable.sockets {
                if loop.read(id, counter: buffered) { leftUnread = true }
            }
            backlogged.store(leftUnread, ordering: .relaxed)
            // Run what is queued, including work the handlers and jobs just queued, until the
            // queue is quiet (bounded, so sockets are polled again regularly): a call served on
            // this thread is several short jobs in a row, and a poll between each would cost
            // more than the jobs.
            for _ in 0 ..< 64 where running {
                let commands = shared.withLock { state -> [Command] in
                    state.signalled = false
                    let commands = state.commands
                    state.commands.removeAll(keepingCapacity: true)
                    return commands
                }
                if commands.isEmpty { break }
                for command in commands {
                    switch command {
                    case .shutdown:
                        running = false
                    case let .run(job):
                        job.runSynchronously(on: asUnownedTaskExecutor())
                    default:
                        loop.execute(command, context: context)
                    }
                    if !running { break }
                }
            }
            loop.flushQueuedSends()
            if loop.hasQueuedSends || queuedBytes.load(ordering: .relaxed) != 0 {
                queuedBytes.store(loop.totalQueuedBytes, ordering: .relaxed)
            }
        }
        loop.closeAll()
        shared.withLock { $0.wakeSender = nil }
        _ = consume wakeReceiver
        continuation.finish()
        exited.signal()
    }
}

/// The loop's thread as a task executor (SE-0417), as NIO's event loops are: tasks started with
/// `Task(executorPreference: loop)` run their short, non-blocking steps on the loop's thread
/// between polls, so work that receives and answers a message needs no thread hop. Code that
/// computes for long or blocks must not run here: it would stall every socket of the node.
extension ZMQEventLoop: TaskExecutor {
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let accepted = shared.withLock { state -> Bool in
            guard !state.stopped else { return false }
            state.commands.append(.run(job))
            signal(&state)
            return true
        }
        if !accepted {
            // After shutdown the job still has to run to completion somewhere: on a pool
            // thread, with the global executor standing in for the loop (handing it to the
            // global executor instead would bounce it straight back here). Not on this thread:
            // the caller may hold a lock the job takes.
            DispatchQueue.global().async {
                job.runSynchronously(on: globalConcurrentExecutor.asUnownedTaskExecutor())
            }
        }
    }
}

/// Hands a non-Sendable value to exactly one other thread, once.
///
/// Used to move the wake-up receiver socket into the loop's thread right after creating it:
/// the creating thread never touches it again.
private final class UncheckedTransfer<Value>: @unchecked Sendable {
    // @unchecked: written once in init, read once by the receiving thread; Thread.start()
    // is the happens-before edge between the two.
    private var value: Value?
    init(_ value: Value) { self.value = value }
    func take() -> Value? {
        defer { value = nil }
        return value
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds (never 0 on a running system), for lock-free timestamps.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}
