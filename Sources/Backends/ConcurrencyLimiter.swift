/// Lets at most `limit` callers through at a time; the rest wait in arrival order.
/// Used by the simulator to model a server's parallel slots.
public actor ConcurrencyLimiter {
    public let limit: Int
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []
    /// The most callers ever inside at once (for tests and reports).
    public private(set) var peak = 0

    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Runs `body` once a slot is free.
    public func run<T: Sendable>(_ body: @Sendable () async throws -> T) async rethrows -> T {
        if running >= limit {
            await withCheckedContinuation { waiting.append($0) }
        } else {
            running += 1
        }
        peak = max(peak, running)
        defer {
            if waiting.isEmpty {
                running -= 1
            } else {
                waiting.removeFirst().resume()   // the slot passes straight to the next waiter
            }
        }
        return try await body()
    }
}
