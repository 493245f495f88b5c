import Backends
import SelfImproveCore

/// The coordinator's book of work: which paths of which sampling requests are wanted, leased
/// to whom until when, and done. A pure state machine (no clock, no I/O: the caller passes
/// `now`), so every failure case can be tested directly.
///
/// - A **unit** is one ``SampleWork`` of a question's method: `n` paths of one prompt (LMSI
///   asks for one unit of m paths per question; a search asks for many small ones). A **lease**
///   hands a sampler a unit's prompt and a range of its path indices (at most
///   `pathsPerRequest`) until a deadline.
/// - Paths are keyed by (unit, index): a path for an index already done, or from a lease that
///   expired or was revoked, is dropped, never counted twice.
/// - A lease that expires, whose sampler is lost, or that fails gives its missing indices back
///   to the queue; an index that fails `maxAttempts` times is given up and counted as failed.
/// - A unit's **group** is complete when every index has a path or was given up; only complete
///   groups leave the ledger (``complete(_:paths:modelVersion:)`` returns them), in the order
///   they complete.
public struct WorkLedger: Sendable {
    /// Identifies one lease.
    public struct LeaseID: Hashable, Sendable, Comparable, CustomStringConvertible {
        public let rawValue: UInt64
        public static func < (lhs: LeaseID, rhs: LeaseID) -> Bool { lhs.rawValue < rhs.rawValue }
        public var description: String { "lease-\(rawValue)" }
    }

    /// Identifies a unit: its question and the method's key for the request.
    public struct UnitID: Hashable, Sendable {
        public var question: String
        public var key: Int
    }

    /// Work handed to a sampler.
    public struct Lease: Hashable, Sendable {
        public var id: LeaseID
        public var question: Question
        /// The unit's request (prompt, settings, key).
        public var work: SampleWork
        /// The path indices this lease asks for.
        public var indices: [Int]
        public var sampler: String
        public var deadline: ContinuousClock.Instant

        /// The unit the lease draws paths for.
        public var unit: UnitID { UnitID(question: question.id, key: work.key) }
    }

    /// A unit whose every path index is settled.
    public struct Group: Sendable {
        public var question: Question
        /// The method's key of the unit's request.
        public var key: Int
        /// One entry per index `0 ..< n`: the path with who drew it, or nil where it was given up.
        public var paths: [SampledPath?]
        /// What the request was for (``SampleWork/purpose``).
        public var purpose: String?
        /// Indices given up after `maxAttempts` failures.
        public var failedIndices: [Int] { paths.indices.filter { paths[$0] == nil } }
    }

    /// What happened to paths offered for a lease.
    public struct Outcome: Sendable {
        /// Groups completed by these paths.
        public var completed: [Group] = []
        /// Paths dropped: duplicates, unknown or revoked leases, indices outside the lease.
        public var dropped = 0
        /// The completed lease's deadline (its age is the lease's latency), when it was known.
        public var leaseDeadline: ContinuousClock.Instant?
        /// The sampler the lease was granted to, when another one tried to end it (refused:
        /// the lease stays granted).
        public var heldBy: String?
    }

    private struct UnitState {
        var question: Question
        var work: SampleWork
        var paths: [SampledPath?]
        var settled: [Bool]
        var attempts: [Int]
        /// Indices waiting to be leased.
        var waiting: [Int]
    }

    /// Paths of a unit added with ``add(_:)``.
    public let m: Int
    public let pathsPerRequest: Int
    public let leaseDuration: Duration
    public let maxAttempts: Int

    private var units: [UnitID: UnitState] = [:]
    /// Units with waiting indices, oldest first (fairness: finish started groups first).
    private var queue: [UnitID] = []
    private var leases: [LeaseID: Lease] = [:]
    private var nextLease: UInt64 = 1

    /// - Parameters:
    ///   - m: Paths of a unit added with ``add(_:)``.
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

    /// Units in the ledger (not yet complete).
    public var openUnits: Int { units.count }
    /// Leases outstanding.
    public var outstandingLeases: Int { leases.count }
    /// Whether any index waits for a lease.
    public var hasWaitingWork: Bool { !queue.isEmpty }

    /// Adds a unit of m paths of `question` (key 0, no prompt): for callers that only need m
    /// paths per question. A unit already open is ignored (returns false).
    @discardableResult
    public mutating func add(_ question: Question) -> Bool {
        add(question, work: SampleWork(key: 0, prompt: "", n: m))
    }

    /// Adds a unit: `work.n` paths of `work.prompt` for `question`. A unit already open (same
    /// question and key) is ignored (returns false).
    @discardableResult
    public mutating func add(_ question: Question, work: SampleWork) -> Bool {
        let id = UnitID(question: question.id, key: work.key)
        guard units[id] == nil else { return false }
        let n = max(1, work.n)
        units[id] = UnitState(
            question: question, work: work, paths: Array(repeating: nil, count: n), settled: Array(repeating: false, count: n),
            attempts: Array(repeating: 0, count: n), waiting: Array(0 ..< n))
        queue.append(id)
        return true
    }

    /// Pools whose samplers serve only the work sent to them (``SampleWork/pool``); samplers
    /// of other pools serve only work sent to no pool.
    public var reservedPools: Set<String> = []

    /// Leases up to `credits` requests of work to `sampler` of `pool` (its `samplers` entry):
    /// work sent to a reserved pool goes to that pool's samplers only, and they take nothing
    /// else.
    public mutating func lease(to sampler: String, pool: String = "", credits: Int, now: ContinuousClock.Instant) -> [Lease] {
        var granted: [Lease] = []
        let wanted: String? = reservedPools.contains(pool) ? pool : nil
        var position = 0
        while granted.count < credits, position < queue.count {
            let id = queue[position]
            guard var state = units[id] else {
                queue.remove(at: position)
                continue
            }
            if !reservedPools.isEmpty, state.work.pool != wanted {
                position += 1
                continue
            }
            let indices = Array(state.waiting.prefix(pathsPerRequest))
            state.waiting.removeFirst(indices.count)
            if state.waiting.isEmpty { queue.remove(at: position) }
            units[id] = state
            let lease = Lease(id: LeaseID(rawValue: nextLease), question: state.question, work: state.work, indices: indices,
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
    ///
    /// With `sampler`, only the sampler the lease was granted to may complete it: another one's
    /// paths are dropped and the lease stays granted (``Outcome/heldBy``).
    public mutating func complete(_ leaseID: LeaseID, by sampler: String? = nil, paths: [SampledPath], modelVersion: String) -> Outcome {
        var outcome = Outcome()
        if let sampler, let held = leases[leaseID], held.sampler != sampler {
            outcome.dropped = paths.count
            outcome.heldBy = held.sampler
            return outcome
        }
        guard let lease = leases.removeValue(forKey: leaseID), var state = units[lease.unit] else {
            outcome.dropped = paths.count
            return outcome
        }
        outcome.leaseDeadline = lease.deadline
        for (position, index) in lease.indices.enumerated() {
            if position < paths.count {
                if state.settled[index] {
                    outcome.dropped += 1
                } else {
                    var path = paths[position]
                    path.sampler = lease.sampler
                    path.modelVersion = modelVersion
                    state.paths[index] = path
                    state.settled[index] = true
                }
            } else {
                giveBack(index, of: &state, countingAttempt: false)
            }
        }
        outcome.dropped += max(0, paths.count - lease.indices.count)
        finish(lease.unit, state, into: &outcome)
        return outcome
    }

    /// The lease failed (backend error, sampler refused): its indices count an attempt and go
    /// back to the queue, or are given up after `maxAttempts`.
    ///
    /// With `sampler`, only the sampler the lease was granted to may fail it (as for
    /// ``complete(_:by:paths:modelVersion:)``).
    public mutating func fail(_ leaseID: LeaseID, by sampler: String? = nil) -> Outcome {
        var outcome = Outcome()
        if let sampler, let held = leases[leaseID], held.sampler != sampler {
            outcome.heldBy = held.sampler
            return outcome
        }
        guard let lease = leases.removeValue(forKey: leaseID), var state = units[lease.unit] else { return outcome }
        for index in lease.indices { giveBack(index, of: &state, countingAttempt: true) }
        finish(lease.unit, state, into: &outcome)
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

    private mutating func giveBack(_ index: Int, of state: inout UnitState, countingAttempt: Bool) {
        guard !state.settled[index] else { return }
        if countingAttempt { state.attempts[index] += 1 }
        if state.attempts[index] >= maxAttempts {
            state.settled[index] = true   // given up: stays nil
            return
        }
        let id = UnitID(question: state.question.id, key: state.work.key)
        if state.waiting.isEmpty, !queue.contains(id) {
            // Re-queued work goes first, so started groups finish before new ones begin.
            queue.insert(id, at: 0)
        }
        state.waiting.append(index)
    }

    private mutating func finish(_ id: UnitID, _ state: UnitState, into outcome: inout Outcome) {
        if state.settled.allSatisfy({ $0 }) {
            units[id] = nil
            queue.removeAll { $0 == id }
            outcome.completed.append(Group(question: state.question, key: state.work.key, paths: state.paths,
                                           purpose: state.work.purpose))
        } else {
            units[id] = state
        }
    }
}
