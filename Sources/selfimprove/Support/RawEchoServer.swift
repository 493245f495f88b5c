import Foundation
import Synchronization
import ZeroMQ

/// A bare ZeroMQ ROUTER that sends every message straight back: the baseline the actor
/// benchmark compares against. Runs on its own thread with blocking polls.
final class RawEchoServer: Sendable {
    private let stopping = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    /// Binds and starts echoing on a new thread.
    /// - Returns: The bound endpoint.
    static func start(bind endpoint: String) throws -> (RawEchoServer, String) {
        let server = RawEchoServer()
        let context = try ZMQContext()
        let ready = Mutex<Result<String, ZMQError>?>(nil)
        let readySignal = DispatchSemaphore(value: 0)
        let thread = Thread {
            var options = ZMQSocketOptions()
            options.sendHighWaterMark = 100_000
            options.receiveHighWaterMark = 100_000
            let socket: ZMQSocket
            do {
                socket = try ZMQSocket(context: context, type: .router, options: options)
                let bound = try socket.bind(endpoint)
                ready.withLock { $0 = .success(bound) }
            } catch let error as ZMQError {
                ready.withLock { $0 = .failure(error) }
                readySignal.signal()
                server.finished.signal()
                return
            } catch {
                ready.withLock { $0 = .failure(ZMQError(.other, "\(error)")) }
                readySignal.signal()
                server.finished.signal()
                return
            }
            readySignal.signal()
            while !server.stopping.load(ordering: .relaxed) {
                guard socket.waitReadable(timeoutMs: 100) else { continue }
                while let frames = try? socket.receive() {
                    try? socket.send(frames)
                }
            }
            server.finished.signal()
        }
        thread.start()
        readySignal.wait()
        switch ready.withLock({ $0 }) {
        case let .success(bound)?: return (server, bound)
        case let .failure(error)?: throw error
        case nil: throw ZMQError(.other, "echo server did not start")
        }
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        finished.wait()
    }
}
