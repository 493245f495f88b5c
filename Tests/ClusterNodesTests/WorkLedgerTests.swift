import Backends
import ClusterNodes
import Foundation
import SelfImproveCore
import Testing

@Suite("Coordinator work ledger")
struct WorkLedgerTests {
    let start = ContinuousClock.now

    private func question(_ id: Int) -> Question {
        Question(id: "q\(id)", text: "Question \(id)?", kind: .number)
    }

    private func paths(_ lease: WorkLedger.Lease, count: Int? = nil) -> [SampledPath] {
        (lease.indices.prefix(count ?? lease.indices.count)).map {
            SampledPath(text: "\(lease.question.id)#\($0) by \(lease.sampler). The answer is \($0).", completionTokens: 5, finishReason: "stop")
        }
    }

    @Test func leasesCoverEveryIndexOnceAndCompleteGroupsInOrder() {
        var ledger = WorkLedger(m: 8, pathsPerRequest: 3, leaseDuration: .seconds(10))
        ledger.add(question(1))
        let addedTwice = ledger.add(question(1))
        #expect(!addedTwice)
        let leases = ledger.lease(to: "s1", credits: 10, now: start)
        #expect(leases.map(\.indices) == [[0, 1, 2], [3, 4, 5], [6, 7]])
        #expect(!ledger.hasWaitingWork)
        var completed: [WorkLedger.Group] = []
        for lease in leases.reversed() {
            completed += ledger.complete(lease.id, paths: paths(lease), modelVersion: "v1").completed
        }
        #expect(completed.count == 1)
        guard let group = completed.first else { return }
        #expect(group.paths.map { $0?.text.hasPrefix("q1#") } == Array(repeating: true, count: 8))
        #expect(group.paths.enumerated().allSatisfy { $0.element?.text.hasPrefix("q1#\($0.offset) ") == true })
        #expect(group.paths.map { $0?.sampler } == Array(repeating: "s1", count: 8))
        #expect(group.failedIndices.isEmpty)
        #expect(ledger.openUnits == 0)
    }

    @Test func aQuestionsUnitsAreLeasedAndCompletedApartWithTheirOwnPromptsAndSettings() {
        var ledger = WorkLedger(m: 8, pathsPerRequest: 2, leaseDuration: .seconds(10))
        let expand = SampleWork(key: 1, prompt: "Q: 2 + 2?\nA:", n: 3, temperature: 1.0, maxTokens: 40, stop: ["\n"])
        let rollout = SampleWork(key: 2, prompt: "Q: 2 + 2?\nA: 2 + 2 = 4.\n", n: 1)
        let added = [ledger.add(question(1), work: expand), ledger.add(question(1), work: rollout),
                     ledger.add(question(1), work: SampleWork(key: 1, prompt: "another", n: 5))]
        #expect(added == [true, true, false], "a unit already open is refused")
        #expect(ledger.openUnits == 2)
        let leases = ledger.lease(to: "s1", credits: 10, now: start)
        // Units go in order, each split into requests of at most `pathsPerRequest` of its own n.
        #expect(leases.map(\.work.key) == [1, 1, 2])
        #expect(leases.map(\.indices) == [[0, 1], [2], [0]])
        #expect(leases[0].work == expand && leases[2].work == rollout)
        #expect(!leases[0].work.usesRunSettings && leases[2].work.usesRunSettings)
        // The rollout completes first: its group comes out alone, under its key.
        let rolloutDone = ledger.complete(leases[2].id, paths: paths(leases[2]), modelVersion: "v1").completed
        #expect(rolloutDone.map(\.key) == [2])
        #expect(rolloutDone.first?.paths.count == 1)
        #expect(ledger.complete(leases[0].id, paths: paths(leases[0]), modelVersion: "v1").completed.isEmpty)
        let expandDone = ledger.complete(leases[1].id, paths: paths(leases[1]), modelVersion: "v1").completed
        #expect(expandDone.map(\.key) == [1])
        #expect(expandDone.first?.paths.count == 3)
        #expect(ledger.openUnits == 0)
        // Once complete, the same key may be asked for again.
        let again = ledger.add(question(1), work: expand)
        #expect(again)
    }

    @Test func workSentToAReservedPoolGoesToItsSamplersOnlyAndTheyTakeNothingElse() {
        var ledger = WorkLedger(m: 8, pathsPerRequest: 4, leaseDuration: .seconds(10))
        ledger.reservedPools = ["fast"]
        ledger.add(question(1), work: SampleWork(key: 1, prompt: "expand", n: 2, purpose: "expansion"))
        ledger.add(question(1), work: SampleWork(key: 2, prompt: "rollout", n: 4, pool: "fast", purpose: "rollout"))
        ledger.add(question(2), work: SampleWork(key: 1, prompt: "expand", n: 2, purpose: "expansion"))
        let fast = ledger.lease(to: "fast-1", pool: "fast", credits: 10, now: start)
        #expect(fast.map(\.work.key) == [2])
        #expect(ledger.lease(to: "fast-1", pool: "fast", credits: 10, now: start).isEmpty, "nothing else for the pool")
        let main = ledger.lease(to: "sampler-1", pool: "sampler", credits: 10, now: start)
        #expect(main.map(\.question.id) == ["q1", "q2"] && main.allSatisfy { $0.work.pool == nil })
        // A failed pool lease goes back to the pool.
        _ = ledger.fail(fast[0].id)
        #expect(ledger.lease(to: "sampler-1", pool: "sampler", credits: 10, now: start).isEmpty)
        #expect(ledger.lease(to: "fast-2", pool: "fast", credits: 10, now: start).map(\.work.key) == [2])
    }

    @Test func creditsBoundTheLeasesAndEverySamplerGetsWork() {
        var ledger = WorkLedger(m: 4, pathsPerRequest: 4, leaseDuration: .seconds(10))
        for id in 0 ..< 5 { ledger.add(question(id)) }
        let fast = ledger.lease(to: "fast", credits: 3, now: start)
        let slow = ledger.lease(to: "slow", credits: 1, now: start)
        #expect(fast.count == 3)
        #expect(slow.map(\.question.id) == ["q3"])
        #expect(ledger.outstandingLeases == 4)
    }

    @Test func aLateDuplicateAfterExpiryIsDroppedNotCountedTwice() {
        var ledger = WorkLedger(m: 4, pathsPerRequest: 4, leaseDuration: .seconds(1))
        ledger.add(question(1))
        let slow = ledger.lease(to: "slow", credits: 1, now: start)[0]
        let (revoked, _) = ledger.expire(now: start + .seconds(2))
        #expect(revoked.map(\.id) == [slow.id])
        let retry = ledger.lease(to: "fast", credits: 1, now: start + .seconds(2))[0]
        #expect(retry.indices == slow.indices)
        let done = ledger.complete(retry.id, paths: paths(retry), modelVersion: "v1")
        #expect(done.completed.count == 1)
        #expect(done.completed[0].paths.map { $0?.sampler } == Array(repeating: "fast", count: 4))
        let late = ledger.complete(slow.id, paths: paths(slow), modelVersion: "v1")
        #expect(late.completed.isEmpty)
        #expect(late.dropped == 4)
    }

    @Test func onlyTheSamplerALeaseWasGrantedToCanCompleteOrFailIt() {
        var ledger = WorkLedger(m: 4, pathsPerRequest: 4, leaseDuration: .seconds(60))
        ledger.add(question(1))
        let lease = ledger.lease(to: "sampler-1", credits: 1, now: start)[0]
        // Another sampler's completion and failure of it are refused; the lease stays granted.
        let forged = ledger.complete(lease.id, by: "sampler-2", paths: paths(lease), modelVersion: "forged")
        #expect(forged.heldBy == "sampler-1" && forged.dropped == 4 && forged.completed.isEmpty)
        #expect(ledger.fail(lease.id, by: "sampler-2").heldBy == "sampler-1")
        #expect(ledger.outstandingLeases == 1)
        // The holder completes it.
        let done = ledger.complete(lease.id, by: "sampler-1", paths: paths(lease), modelVersion: "v1")
        #expect(done.heldBy == nil && done.completed.count == 1)
        #expect(done.completed[0].paths.allSatisfy { $0?.modelVersion == "v1" })
    }

    @Test func aLostSamplersLeasesGoElsewhere() {
        var ledger = WorkLedger(m: 4, pathsPerRequest: 2, leaseDuration: .seconds(60))
        ledger.add(question(1))
        let lost = ledger.lease(to: "dead", credits: 1, now: start)[0]
        let kept = ledger.lease(to: "alive", credits: 1, now: start)[0]
        let (revoked, _) = ledger.samplerLost("dead")
        #expect(revoked.map(\.id) == [lost.id])
        let again = ledger.lease(to: "alive", credits: 5, now: start)
        #expect(again.map(\.indices) == [lost.indices])
        _ = ledger.complete(kept.id, paths: paths(kept), modelVersion: "v1")
        let done = ledger.complete(again[0].id, paths: paths(again[0]), modelVersion: "v1")
        #expect(done.completed.count == 1)
        #expect(done.completed[0].paths.allSatisfy { $0?.sampler == "alive" })
    }

    @Test func fewerPathsThanAskedRequeuesTheRestWithoutAnAttempt() {
        var ledger = WorkLedger(m: 4, pathsPerRequest: 4, leaseDuration: .seconds(60), maxAttempts: 1)
        ledger.add(question(1))
        let lease = ledger.lease(to: "s", credits: 1, now: start)[0]
        let partial = ledger.complete(lease.id, paths: paths(lease, count: 1), modelVersion: "v1")
        #expect(partial.completed.isEmpty)
        let rest = ledger.lease(to: "s", credits: 1, now: start)[0]
        #expect(rest.indices == [1, 2, 3])
        let done = ledger.complete(rest.id, paths: paths(rest), modelVersion: "v1")
        #expect(done.completed.first?.failedIndices == [])
    }

    @Test func indicesThatKeepFailingAreGivenUpAndTheGroupStillCompletes() {
        var ledger = WorkLedger(m: 2, pathsPerRequest: 1, leaseDuration: .seconds(60), maxAttempts: 2)
        ledger.add(question(1))
        let good = ledger.lease(to: "s", credits: 1, now: start)[0]
        _ = ledger.complete(good.id, paths: paths(good), modelVersion: "v1")
        var completed: [WorkLedger.Group] = []
        for _ in 0 ..< 2 {
            let bad = ledger.lease(to: "s", credits: 1, now: start)
            #expect(bad.count == 1)
            completed += ledger.fail(bad[0].id).completed
        }
        #expect(completed.count == 1)
        #expect(completed[0].failedIndices == [1])
        let nothingLeft = ledger.lease(to: "s", credits: 1, now: start)
        #expect(nothingLeft.isEmpty)
    }

    /// Random schedules of leases, completions, failures, expiries and lost samplers: every
    /// question completes exactly once, with m settled indices, whatever happens. Seeded (the
    /// seed is in every failure; SELFIMPROVE_TEST_SEED replays one).
    @Test func everyQuestionCompletesExactlyOnceUnderRandomFailures() {
        let seed = ProcessInfo.processInfo.environment["SELFIMPROVE_TEST_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 0 ... .max)
        var generator = SplitMix64(seed: seed)
        for _ in 0 ..< 50 {
            let m = Int.random(in: 1 ... 8, using: &generator)
            var ledger = WorkLedger(m: m, pathsPerRequest: Int.random(in: 1 ... m, using: &generator),
                                    leaseDuration: .seconds(5), maxAttempts: 4)
            let count = Int.random(in: 1 ... 30, using: &generator)
            for id in 0 ..< count { ledger.add(question(id)) }
            var now = start
            var outstanding: [WorkLedger.Lease] = []
            var finished: [String: Int] = [:]
            var steps = 0
            while ledger.openUnits > 0, steps < 100_000 {
                steps += 1
                now += .milliseconds(Int.random(in: 0 ... 500, using: &generator))
                let sampler = "s\(Int.random(in: 0 ... 3, using: &generator))"
                var groups: [WorkLedger.Group] = []
                switch Int.random(in: 0 ... 9, using: &generator) {
                case 0 ... 2:
                    outstanding += ledger.lease(to: sampler, credits: Int.random(in: 1 ... 3, using: &generator), now: now)
                case 3 ... 6 where !outstanding.isEmpty:
                    let lease = outstanding.remove(at: Int.random(in: 0 ..< outstanding.count, using: &generator))
                    let produced = Int.random(in: 0 ... lease.indices.count + 1, using: &generator)
                    let offered = (0 ..< produced).map { _ in SampledPath(text: "p", completionTokens: 1, finishReason: "stop") }
                    groups += ledger.complete(lease.id, paths: offered, modelVersion: "v").completed
                    if Bool.random(using: &generator) { outstanding.append(lease) }   // a duplicate later
                case 7 where !outstanding.isEmpty:
                    let lease = outstanding.remove(at: Int.random(in: 0 ..< outstanding.count, using: &generator))
                    groups += ledger.fail(lease.id).completed
                case 8:
                    groups += ledger.expire(now: now).outcome.completed
                case 9:
                    groups += ledger.samplerLost(sampler).outcome.completed
                default:
                    break
                }
                for group in groups {
                    finished[group.question.id, default: 0] += 1
                    #expect(group.paths.count == m, "seed \(seed)")
                }
            }
            #expect(ledger.openUnits == 0, "seed \(seed)")
            #expect(finished.count == count, "seed \(seed)")
            #expect(finished.values.allSatisfy { $0 == 1 }, "seed \(seed)")
        }
    }
}
