import Backends
import SelfImproveCore

/// The coordinator's book of work: which paths of which questions are wanted, leased to whom
/// until when, and done. A pure state machine (no clock, no I/O: the caller passes `now`), so
/// every failure case can be tested directly.
///
/// - Every question needs paths `0 ..< m`. A **lease** hands a sampler a question and a range
///   of path indices (at most `pathsPerRequest`) until a deadline.
/// - Paths are keyed by (question, index): a path for an index already done, or from a lease
///   that expired or was revoked, is dropped, never counted twice.
/// - A lease that expires, whose sampler is lost, or that fails gives its missing indices back
///   to the queue; an index that fails `maxAttempts` times is given up and counted as failed.
/// - A question's **group** is complete when every index has a path or was given up; only
///   complete groups leave the ledger (``complete(_:paths:)`` returns them), in the order they
///   complete.
public struct WorkLedger: Sendable {
    /// Identifies one lease.
    public struct LeaseID: Hashable, Sendable, Comparable, CustomStringConvertible {
        public let rawValue: UInt64
        public static func < (lhs: LeaseID, rhs: LeaseID) -> Bool { lhs.rawValue < rhs.rawValue }
        public var description: String { "lease-\(rawValue)" }
    }

    /// Work handed to a sampler.
    public struct Lease: Hashable, Sendable {
        public var id: LeaseID
        public var question: Question
        /// The path indices this lease asks for.
        public var indices: [Int]
        public var sampler: String
        public var deadline: ContinuousClock.Instant
    }

    /// A question whose every path index is settled.
    public struct Group: Sendable {
        public var question: Question
        /// One entry per index `0 ..< m`: the path, or nil where it was given up.
        public var paths: [SampledPath?]
        /// Who produced each path (nil where given up).
        public var samplers: [String?]
        public var modelVersions: [String?]
        /// Indices given up after `maxAttempts` failures.
        public var failedIndices: [Int] { paths.indices.filter { paths[$0] == nil } }
    }

    /// What happened to paths offered for a lease.
    public struct Outcome: Sendable {
        /// Groups completed by these paths.
        public var completed: [Group] = []
        /// Paths dropped: duplicates, unknown or revoked leases, indices outside the lease.
        public var dropped = 0
    }

    private struct QuestionState {
        var question: Question
        var paths: [SampledPath?]
        var samplers: [String?]
        var modelVersions: [String?]
        var settled: [Bool]
        var attempts: [Int]
        /// Indices waiting to be leased.
        var waiting: [Int]
    }

    public let m: Int
    public let pathsPerRequest: Int
    public let leaseDuration: Duration
    public let maxAttempts: Int

    private var questions: [String: QuestionState] = [:]
    /// Question ids with waiting indices, oldest first (fairness: finish started groups first).
    private var queue: [String] = []
    private var leases: [LeaseID: Lease] = [:]
    private var nextLease: UInt64 = 1

    /// - Parameters:
    ///   - m: Paths per question.
    ///   - pathsPerRequest: Most indices in one lease (one backend request with `n`).
    ///   - leaseDuration: How long a sampler has before the lease's indices go elsewhere.
    ///   - maxAttempts: Leases an index may fail or expire in before it is given up.
    ///   - firstLeaseID: Where lease ids start; a resumed coordinator starts elsewhere, so a
    ///     lease of its predecessor can never be taken for one of its own.
    public init(m: Int, pathsPerRequest: Int, leaseDuration: Duration, maxAttempts: Int = 3, firstLeaseID: UInt64 = 1) {
        self.nextLease = max(1, firstLeaseID)
        self.m = max(1, m)
        self.pathsPerRequest = max(1, pathsPerRequest)
        self.leaseDuration = leaseDuration
        self.maxAttempts = max(1, maxAttempts)
    }

    /// Questions in the ledger (not yet complete).
    public var openQuestions: Int { questions.count }
    /// Leases outstanding.
    public var outstandingLeases: Int { leases.count }
    /// Whether any index waits for a lease.
    public var hasWaitingWork: Bool { !queue.isEmpty }

    /// Adds a question; a question id already open is ignored (returns false).
    @discardableResult
    public mutating func add(_ question: Question) -> Bool {
        guard questions[question.id] == nil else { return false }
        questions[question.id] = QuestionState(
            question: question, paths: Array(repeating: nil, count: m), samplers: Array(repeating: nil, count: m),
            modelVersions: Array(repeating: nil, count: m), settled: Array(repeating: false, count: m),
            attempts: Array(repeating: 0, count: m), waiting: Array(0 ..< m))
        queue.append(question.id)
        return true
    }

    /// Leases up to `credits` requests of work to `sampler`.
    public mutating func lease(to sampler: String, credits: Int, now: ContinuousClock.Instant) -> [Lease] {
        var granted: [Lease] = []
        while granted.count < credits, let id = queue.first, var state = questions[id] {
            let indices = Array(state.waiting.prefix(pathsPerRequest))
            state.waiting.removeFirst(indices.count)
            if state.waiting.isEmpty { queue.removeFirst() }
            questions[id] = state
            let lease = Lease(id: LeaseID(rawValue: nextLease), question: state.question, indices: indices,
                              sampler: sampler, deadline: now + leaseDuration)
            nextLease += 1
            leases[lease.id] = lease
            granted.append(lease)
        }
        return granted
    }

    /// Records the paths a lease produced, in the lease's index order (`paths[k]` is for
    /// `lease.indices[k]`). Fewer paths than indices give the rest back to the queue; more are
    /// dropped. A lease that is unknown (expired, revoked, already completed) drops everything.
    public mutating func complete(_ leaseID: LeaseID, paths: [SampledPath], modelVersion: String) -> Outcome {
        var outcome = Outcome()
        guard let lease = leases.removeValue(forKey: leaseID), var state = questions[lease.question.id] else {
            outcome.dropped = paths.count
            return outcome
        }
        for (position, index) in lease.indices.enumerated() {
            if position < paths.count {
                if state.settled[index] {
                    outcome.dropped += 1
                } else {
                    state.paths[index] = paths[position]
                    state.samplers[index] = lease.sampler
                    state.modelVersions[index] = modelVersion
                    state.settled[index] = true
                }
            } else {
                giveBack(index, of: &state, countingAttempt: false)
            }
        }
        outcome.dropped += max(0, paths.count - lease.indices.count)
        finish(lease.question.id, state, into: &outcome)
        return outcome
    }

    /// The lease failed (backend error, sampler refused): its indices count an attempt and go
    /// back to the queue, or are given up after `maxAttempts`.
    public mutating func fail(_ leaseID: LeaseID) -> Outcome {
        var outcome = Outcome()
        guard let lease = leases.removeValue(forKey: leaseID), var state = questions[lease.question.id] else { return outcome }
        for index in lease.indices { giveBack(index, of: &state, countingAttempt: true) }
        finish(lease.question.id, state, into: &outcome)
        return outcome
    }

    /// Revokes every lease past its deadline (as ``fail(_:)``). Returns the revoked leases
    /// (for the log) and any groups completed by giving indices up.
    public mutating func expire(now: ContinuousClock.Instant) -> (revoked: [Lease], outcome: Outcome) {
        let expired = leases.values.filter { $0.deadline <= now }.sorted { $0.id < $1.id }
        var outcome = Outcome()
        for lease in expired {
            outcome.completed += fail(lease.id).completed
        }
        return (expired, outcome)
    }

    /// Revokes every lease of a sampler that was lost (down, hung, cut off).
    public mutating func samplerLost(_ sampler: String) -> (revoked: [Lease], outcome: Outcome) {
        let lost = leases.values.filter { $0.sampler == sampler }.sorted { $0.id < $1.id }
        var outcome = Outcome()
        for lease in lost {
            outcome.completed += fail(lease.id).completed
        }
        return (lost, outcome)
    }

    private mutating func giveBack(_ index: Int, of state: inout QuestionState, countingAttempt: Bool) {
        guard !state.settled[index] else { return }
        if countingAttempt { state.attempts[index] += 1 }
        if state.attempts[index] >= maxAttempts {
            state.settled[index] = true   // given up: stays nil
            return
        }
        if state.waiting.isEmpty, !queue.contains(state.question.id) {
            // Re-queued work goes first, so started groups finish before new ones begin.
            queue.insert(state.question.id, at: 0)
        }
        state.waiting.append(index)
    }

    private mutating func finish(_ id: String, _ state: QuestionState, into outcome: inout Outcome) {
        if state.settled.allSatisfy({ $0 }) {
            questions[id] = nil
            queue.removeAll { $0 == id }
            outcome.completed.append(Group(question: state.question, paths: state.paths, samplers: state.samplers,
                                           modelVersions: state.modelVersions))
        } else {
            questions[id] = state
        }
    }
}
