import CZeroMQ
import Logging

/// The sockets and send queues of a ``ZMQEventLoop``. Lives on, and is only touched by, the
/// loop's thread.
struct LoopState {
    /// Messages refused at the high-water mark, waiting for one destination, in order.
    struct SendQueue {
        var messages: [[[UInt8]]] = []
        var head = 0
        var bytes = 0
        var isEmpty: Bool { head == messages.count }
    }

    struct Destination: Hashable {
        var socket: ZMQSocketID
        var routingID: [UInt8]?
    }

    let configuration: ZMQEventLoop.Configuration
    let logger: Logger
    let continuation: AsyncStream<ZMQEvent>.Continuation
    var sockets: [ZMQSocketID: ZMQSocket] = [:]
    var order: [ZMQSocketID] = []
    var queues: [Destination: SendQueue] = [:]
    var pollItems: [zmq_pollitem_t] = []
    var pollItemsValid = false
    var pollItemsReading = true
    /// Set by ``ZMQEventLoop/deliverEvents(to:)``: events go here instead of the stream.
    var handler: (@Sendable (ZMQEvent) -> Void)?

    init(configuration: ZMQEventLoop.Configuration, logger: Logger, continuation: AsyncStream<ZMQEvent>.Continuation) {
        self.configuration = configuration
        self.logger = logger
        self.continuation = continuation
    }

    var hasQueuedSends: Bool { !queues.isEmpty }

    /// Bytes in every send queue.
    var totalQueuedBytes: Int { queues.values.reduce(0) { $0 + $1.bytes } }

    /// Waits for readable sockets.
    /// - Returns: Whether the wake-up socket fired, and the readable sockets.
    mutating func poll(wake: ZMQSocket, readSockets: Bool, timeoutMs: Int) -> (wake: Bool, sockets: [ZMQSocketID]) {
        if !pollItemsValid || pollItemsReading != readSockets {
            pollItems.removeAll(keepingCapacity: true)
            pollItems.append(zmq_pollitem_t(socket: wake.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0))
            if readSockets {
                for id in order {
                    guard let socket = sockets[id] else { continue }
                    pollItems.append(zmq_pollitem_t(socket: socket.handle, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0))
                }
            }
            pollItemsValid = true
            pollItemsReading = readSockets
        }
        let count = pollItems.count
        let rc = pollItems.withUnsafeMutableBufferPointer { items in
            zmq_poll(items.baseAddress, Int32(count), timeoutMs)
        }
        guard rc > 0 else {
            if rc < 0 && zmq_errno() != EINTR {
                logger.debug("zmq_poll failed", metadata: ["zmq.errno": "\(zmq_errno())"])
            }
            return (false, [])
        }
        let wakeFired = pollItems[0].revents & Int16(ZMQ_POLLIN) != 0
        var ready: [ZMQSocketID] = []
        if readSockets {
            for index in 1 ..< count where pollItems[index].revents & Int16(ZMQ_POLLIN) != 0 {
                ready.append(order[index - 1])
            }
        }
        return (wakeFired, ready)
    }

    mutating func execute(_ command: ZMQEventLoop.Command, context: ZMQContext) {
        switch command {
        case let .open(id, type, options, bind, connect, completion):
            do throws(ZMQError) {
                let socket = try ZMQSocket(context: context, type: type, options: options)
                var endpoint = ""
                if let bind { endpoint = try socket.bind(bind) }
                if let connect { try socket.connect(connect); endpoint = connect }
                sockets[id] = socket
                order.append(id)
                pollItemsValid = false
                logger.debug("Socket opened", metadata: ["zmq.socket": "\(id)", "zmq.endpoint": "\(endpoint)"])
                completion(.success(endpoint))
            } catch {
                completion(.failure(error))
            }
        case let .send(id, frames):
            send(frames, on: id)
        case let .close(id):
            guard sockets.removeValue(forKey: id) != nil else { return }
            order.removeAll { $0 == id }
            queues = queues.filter { $0.key.socket != id }
            pollItemsValid = false
            logger.debug("Socket closed", metadata: ["zmq.socket": "\(id)"])
        case let .deliver(handler):
            self.handler = handler
        case .run, .shutdown:
            // Handled by the loop itself.
            break
        }
    }

    mutating func send(_ frames: [[UInt8]], on id: ZMQSocketID) {
        guard let socket = sockets[id] else {
            emit(.sendFailed(id, destination: nil, error: ZMQError(.unknownSocket, "send on closed \(id)")), counter: nil)
            return
        }
        let destination = Destination(socket: id, routingID: socket.type == .router ? frames.first : nil)
        if var queue = queues[destination] {
            // Keep order: something for this destination is already waiting.
            enqueue(frames, into: &queue, destination: destination)
            queues[destination] = queue
            return
        }
        do throws(ZMQError) {
            try socket.send(frames)
        } catch where error.code == .wouldBlock {
            var queue = SendQueue()
            enqueue(frames, into: &queue, destination: destination)
            if !queue.isEmpty { queues[destination] = queue }
        } catch {
            report(error, destination: destination)
        }
    }

    private func enqueue(_ frames: [[UInt8]], into queue: inout SendQueue, destination: Destination) {
        let size = frames.reduce(0) { $0 + $1.count }
        guard queue.bytes + size <= configuration.maxQueuedBytesPerDestination else {
            report(ZMQError(.wouldBlock, "peer is not reading: \(queue.bytes) bytes already queued for it"), destination: destination)
            return
        }
        queue.messages.append(frames)
        queue.bytes += size
    }

    private func report(_ error: ZMQError, destination: Destination) {
        logger.debug("Send failed", metadata: ["zmq.socket": "\(destination.socket)", "zmq.error": "\(error.message)"])
        emit(.sendFailed(destination.socket, destination: destination.routingID, error: error), counter: nil)
    }

    /// Hands an event to the handler if one is set, else to the stream (counting it).
    func emit(_ event: ZMQEvent, counter: ZMQEventStream.Counter?) {
        if let handler {
            handler(event)
        } else {
            counter?.increment()
            continuation.yield(event)
        }
    }

    /// Retries queued messages, in order per destination, until each queue empties or blocks.
    mutating func flushQueuedSends() {
        guard !queues.isEmpty else { return }
        for (destination, var queue) in queues {
            guard let socket = sockets[destination.socket] else {
                queues[destination] = nil
                continue
            }
            var dropped = false
            while !queue.isEmpty {
                let frames = queue.messages[queue.head]
                do throws(ZMQError) {
                    try socket.send(frames)
                } catch where error.code == .wouldBlock {
                    break
                } catch {
                    report(error, destination: destination)
                    dropped = true
                    break
                }
                queue.head += 1
                queue.bytes -= frames.reduce(0) { $0 + $1.count }
            }
            if dropped || queue.isEmpty {
                queues[destination] = nil
            } else {
                if queue.head > 1024 {
                    queue.messages.removeFirst(queue.head)
                    queue.head = 0
                }
                queues[destination] = queue
            }
        }
    }

    /// Reads up to one batch of messages from a socket into the event stream.
    /// - Returns: Whether the batch was full (more may be waiting).
    @discardableResult
    func read(_ id: ZMQSocketID, counter: ZMQEventStream.Counter) -> Bool {
        guard let socket = sockets[id] else { return false }
        for _ in 0 ..< configuration.readBatch {
            do {
                guard let (frames, userID) = try socket.receiveWithUserID() else { return false }
                emit(.message(id, frames: frames, userID: userID), counter: counter)
            } catch {
                logger.debug("Receive failed", metadata: ["zmq.socket": "\(id)", "zmq.error": "\(error)"])
                return false
            }
        }
        return true
    }

    mutating func closeAll() {
        queues.removeAll()
        sockets.removeAll()
        order.removeAll()
        pollItems.removeAll()
    }
}
