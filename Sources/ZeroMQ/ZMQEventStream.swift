import Synchronization

/// The async sequence of a ``ZMQEventLoop``'s events.
///
/// Counts events handed out so the loop can stop reading while too many wait unconsumed.
/// Iterate it from exactly one task.
public struct ZMQEventStream: AsyncSequence, Sendable {
    public typealias Element = ZMQEvent

    /// The number of events yielded by the loop and not yet taken by the consumer.
    final class Counter: Sendable {
        private let count = Atomic<Int>(0)
        var value: Int { count.load(ordering: .relaxed) }
        func increment() { count.add(1, ordering: .relaxed) }
        func decrement() { count.subtract(1, ordering: .relaxed) }
    }

    let base: AsyncStream<ZMQEvent>
    let counter: Counter

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<ZMQEvent>.AsyncIterator
        let counter: Counter

        public mutating func next() async -> ZMQEvent? {
            guard let event = await base.next() else { return nil }
            counter.decrement()
            return event
        }

        public mutating func next(isolation actor: isolated (any Actor)?) async -> ZMQEvent? {
            guard let event = await base.next(isolation: actor) else { return nil }
            counter.decrement()
            return event
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: base.makeAsyncIterator(), counter: counter)
    }
}
