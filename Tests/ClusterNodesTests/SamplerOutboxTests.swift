@testable import ClusterNodes
import Testing
import Wire

@Suite("Sampler outbox")
struct SamplerOutboxTests {
    private func submission(_ lease: UInt64) -> Selfimprove_V1_PathSubmission {
        var submission = Selfimprove_V1_PathSubmission()
        submission.leaseID = lease
        return submission
    }

    @Test func freeSlotsAreCreditsAndNothingWaitsWhenSlotsAreFree() async {
        let outbox = SamplerOutbox(capacity: 4)
        let first = await outbox.next()
        #expect(first.submissions.isEmpty)
        #expect(first.credits == 4)
        await outbox.take(3)
        let second = await outbox.next()
        #expect(second.credits == 1)
    }

    /// Leases finished while a request is in flight go together in the next one, with their
    /// slots as credits; a failed lease frees its slot without a submission.
    @Test func finishedLeasesTravelTogetherWithTheirSlots() async {
        let outbox = SamplerOutbox(capacity: 3)
        await outbox.take(3)
        await outbox.finish(submission(1))
        await outbox.finish(nil)
        await outbox.finish(submission(3))
        let next = await outbox.next()
        #expect(next.submissions.map(\.leaseID) == [1, 3])
        #expect(next.credits == 3)
        // Handed over: not sent twice.
        let after = await outbox.next()
        #expect(after.submissions.isEmpty)
    }

    /// Paths of a request that failed go with the next one, ahead of those finished since.
    @Test func submissionsOfAFailedRequestGoAgain() async {
        let outbox = SamplerOutbox(capacity: 2)
        await outbox.take(2)
        await outbox.finish(submission(1))
        let failed = await outbox.next()
        await outbox.putBack(failed.submissions)
        await outbox.finish(submission(2))
        let next = await outbox.next()
        #expect(next.submissions.map(\.leaseID) == [1, 2])
        #expect(next.credits == 2)
    }

    /// With every slot busy and nothing finished, `next` waits until a lease is done.
    @Test func aFullSamplerWaitsForItsFirstFinishedLease() async {
        let outbox = SamplerOutbox(capacity: 2)
        await outbox.take(2)
        async let waiting = outbox.next()
        await outbox.finish(submission(7))
        let next = await waiting
        #expect(next.submissions.map(\.leaseID) == [7])
        #expect(next.credits == 1)
    }
}
