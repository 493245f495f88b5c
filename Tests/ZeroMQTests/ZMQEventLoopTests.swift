import Foundation
import Logging
import Testing
import ZeroMQ

@Suite("ZMQEventLoop")
struct ZMQEventLoopTests {
    private func makeLoop(_ configuration: ZMQEventLoop.Configuration = .default) throws -> ZMQEventLoop {
        var logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        logger.logLevel = .critical
        return try ZMQEventLoop(name: "test-io", configuration: configuration, logger: logger)
    }

    @Test(.timeLimit(.minutes(1)))
    func framesTravelThroughTheLoopAndArriveOnTheEventStream() async throws {
        let loop = try makeLoop()
        defer { loop.shutdown() }
        let (router, endpoint) = try await loop.bind(.router, to: "tcp://127.0.0.1:*")
        var options = ZMQSocketOptions()
        options.routingID = Array("d".utf8)
        let dealer = try await loop.connect(.dealer, to: endpoint, options: options)
        var events = loop.events.makeAsyncIterator()

        for index in 0 ..< 100 {
            loop.send([[UInt8(index)], Array(repeating: UInt8(index), count: index * 100)], on: dealer)
        }
        for index in 0 ..< 100 {
            guard case let .message(socket, frames, _)? = await events.next() else {
                Issue.record("stream ended")
                return
            }
            #expect(socket == router)
            #expect(frames == [Array("d".utf8), [UInt8(index)], Array(repeating: UInt8(index), count: index * 100)])
        }
        loop.send([Array("d".utf8), [42]], on: router)
        guard case let .message(socket, frames, _)? = await events.next() else {
            Issue.record("stream ended")
            return
        }
        #expect(socket == dealer)
        #expect(frames == [[42]])
        #expect(loop.bufferedEventCount == 0)
    }

    @Test(.timeLimit(.minutes(1)))
    func sendsToAnUnknownPeerAreReportedNotLost() async throws {
        let loop = try makeLoop()
        defer { loop.shutdown() }
        let (router, _) = try await loop.bind(.router, to: "tcp://127.0.0.1:*")
        loop.send([Array("ghost".utf8), [1]], on: router)
        var events = loop.events.makeAsyncIterator()
        guard case let .sendFailed(socket, destination, error)? = await events.next() else {
            Issue.record("no failure reported")
            return
        }
        #expect(socket == router)
        #expect(destination == Array("ghost".utf8))
        #expect(error.code == .hostUnreachable)
    }

    @Test(.timeLimit(.minutes(1)))
    func aPeerThatNeverReadsCannotBlockTheLoopOrGrowItsMemoryWithoutBound() async throws {
        var configuration = ZMQEventLoop.Configuration()
        configuration.maxQueuedBytesPerDestination = 1 << 20
        let loop = try makeLoop(configuration)
        defer { loop.shutdown() }
        // A listener that never reads.
        let context = try ZMQContext()
        var silentOptions = ZMQSocketOptions()
        silentOptions.receiveHighWaterMark = 10
        let silent = try ZMQSocket(context: context, type: .router, options: silentOptions)
        let silentEndpoint = try silent.bind("tcp://127.0.0.1:*")
        var dealerOptions = ZMQSocketOptions()
        dealerOptions.sendHighWaterMark = 10
        let dealer = try await loop.connect(.dealer, to: silentEndpoint, options: dealerOptions)
        let payload = [UInt8](repeating: 1, count: 64 << 10)
        for _ in 0 ..< 200 { loop.send([payload], on: dealer) }   // 12.5 MiB offered

        var events = loop.events.makeAsyncIterator()
        guard case let .sendFailed(_, _, error)? = await events.next() else {
            Issue.record("no overflow reported")
            return
        }
        #expect(error.code == .wouldBlock)

        // The loop still serves other sockets.
        let (router, endpoint) = try await loop.bind(.router, to: "tcp://127.0.0.1:*")
        let other = try await loop.connect(.dealer, to: endpoint)
        loop.send([[9]], on: other)
        while let event = await events.next() {
            if case let .message(socket, frames, _) = event, socket == router {
                #expect(frames.last == [9])
                break
            }
        }
        withExtendedLifetime(silent) {}
    }

    @Test(.timeLimit(.minutes(1)))
    func tasksPreferringTheLoopRunOnItsThread() async throws {
        let loop = try makeLoop()
        defer { loop.shutdown() }
        #expect(!loop.isLoopThread)
        let onLoop = await Task(executorPreference: loop) { loop.isLoopThread }.value
        #expect(onLoop)
    }

    @Test(.timeLimit(.minutes(1)))
    func shutdownWithOpenSocketsReturnsAndEndsTheStream() async throws {
        let loop = try makeLoop()
        let (_, endpoint) = try await loop.bind(.router, to: "tcp://127.0.0.1:*")
        for _ in 0 ..< 10 {
            let dealer = try await loop.connect(.dealer, to: endpoint)
            loop.send([Array(repeating: 0, count: 1000)], on: dealer)
        }
        _ = try await loop.connect(.dealer, to: "tcp://127.0.0.1:1")   // never connects
        loop.shutdown()
        loop.shutdown()   // idempotent
        var events = loop.events.makeAsyncIterator()
        while await events.next() != nil {}
        await #expect(throws: ZMQError.self) { _ = try await loop.bind(.router, to: "tcp://127.0.0.1:*") }
    }

    /// A job that holds the loop's thread makes the loop report itself behind (messages may be
    /// waiting unread), and the report clears once the thread polls again.
    @Test(.timeLimit(.minutes(1)))
    func aBusyThreadReportsItselfBehind() async throws {
        let loop = try makeLoop()
        defer { loop.shutdown() }
        #expect(!loop.isBehind)
        let job = Task(executorPreference: loop) { usleep(400_000) }
        var sawBehind = false
        for _ in 0 ..< 100 where !sawBehind {
            try await Task.sleep(for: .milliseconds(10))
            sawBehind = loop.isBehind
        }
        #expect(sawBehind)
        await job.value
        var cleared = false
        for _ in 0 ..< 100 where !cleared {
            try await Task.sleep(for: .milliseconds(10))
            cleared = !loop.isBehind
        }
        #expect(cleared)
    }
}
