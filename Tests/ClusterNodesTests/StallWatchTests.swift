@testable import ClusterNodes
import Testing

/// When a coordinator calls its run stalled, and when it blames the trainer.
@Suite("Coordinator stall watch")
struct StallWatchTests {
    let start = ContinuousClock.now

    @Test func aRunIsStalledOnlyWhenNeitherPathsNorStoredQuestionsMoveForTheTimeout() {
        var watch = StallWatch(now: start)
        let seen1 = watch.stalled(paths: 0, done: 0, now: start + .seconds(5), timeout: .seconds(10))
        #expect(!seen1)
        let seen2 = watch.stalled(paths: 0, done: 0, now: start + .seconds(11), timeout: .seconds(10))
        #expect(seen2)
        let seen3 = watch.stalled(paths: 8, done: 0, now: start + .seconds(12), timeout: .seconds(10))
        #expect(!seen3)
        let seen4 = watch.stalled(paths: 8, done: 0, now: start + .seconds(21), timeout: .seconds(10))
        #expect(!seen4)
        let seen5 = watch.stalled(paths: 8, done: 1, now: start + .seconds(30), timeout: .seconds(10))
        #expect(!seen5)
        let seen6 = watch.stalled(paths: 8, done: 1, now: start + .seconds(41), timeout: .seconds(10))
        #expect(seen6)
    }

    @Test func aFullTrainerWindowIsReportedOncePerEpisodeAfterThePatienceAndItsEndToo() {
        var watch = StallWatch(now: start)
        let patience = Duration.seconds(5)
        let seen7 = watch.trainerWindow(full: false, now: start, patience: patience)
        #expect(seen7 == nil)
        let seen8 = watch.trainerWindow(full: true, now: start + .seconds(1), patience: patience)
        #expect(seen8 == nil)
        let seen9 = watch.trainerWindow(full: true, now: start + .seconds(5), patience: patience)
        #expect(seen9 == nil)
        let seen10 = watch.trainerWindow(full: true, now: start + .seconds(6), patience: patience)
        #expect(seen10 == .backPressure(waited: .seconds(5)))
        let seen11 = watch.trainerWindow(full: true, now: start + .seconds(20), patience: patience)
        #expect(seen11 == nil)
        let seen12 = watch.trainerWindow(full: false, now: start + .seconds(21), patience: patience)
        #expect(seen12 == .caughtUp)
        let seen13 = watch.trainerWindow(full: false, now: start + .seconds(22), patience: patience)
        #expect(seen13 == nil)
        // A short episode is not reported, nor is its end.
        let seen14 = watch.trainerWindow(full: true, now: start + .seconds(30), patience: patience)
        #expect(seen14 == nil)
        let seen15 = watch.trainerWindow(full: false, now: start + .seconds(31), patience: patience)
        #expect(seen15 == nil)
    }
}
