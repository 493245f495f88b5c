/// How often, and after how long, a failed model request is tried again: exponential backoff
/// with full jitter (a random wait between zero and the capped exponential), so that many
/// samplers hitting one overloaded server do not retry in lockstep.
public struct RetryPolicy: Sendable, Hashable {
    /// Tries in all, the first included (1 = no retry).
    public var maxAttempts: Int
    /// The cap of the first wait; it doubles after every failure.
    public var baseDelay: Duration
    /// No wait is longer than this (a server's `Retry-After` included).
    public var maxDelay: Duration

    public init(maxAttempts: Int = 4, baseDelay: Duration = .milliseconds(250), maxDelay: Duration = .seconds(8)) {
        self.maxAttempts = max(1, maxAttempts)
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
    }

    /// The wait before try `attempt + 1`, after `attempt` (1-based) failed tries.
    /// - Parameter retryAfter: What the server asked for (`Retry-After`), if anything; it
    ///   replaces the random wait but stays under ``maxDelay``.
    public func delay<R: RandomNumberGenerator>(afterAttempt attempt: Int, retryAfter: Duration? = nil,
                                                using random: inout R) -> Duration
    {
        if let retryAfter { return min(retryAfter, maxDelay) }
        let cap = min(maxDelay, baseDelay * (1 << min(max(0, attempt - 1), 20)))
        guard cap.milliseconds > 0 else { return .zero }
        return .milliseconds(Int64.random(in: 0 ... cap.milliseconds, using: &random))
    }

    /// ``delay(afterAttempt:retryAfter:using:)`` with the system's random numbers.
    public func delay(afterAttempt attempt: Int, retryAfter: Duration? = nil) -> Duration {
        var random = SystemRandomNumberGenerator()
        return delay(afterAttempt: attempt, retryAfter: retryAfter, using: &random)
    }
}
