import Foundation
import ProcessSupervision
import Testing

/// libzmq aborts a process (`!_io_error`, libzmq #3937, #4364, #4767) when a ZMTP heartbeat
/// reaches a connection whose input is stopped at the high-water mark after the peer hung up.
/// The project's socket options leave ZMTP heartbeats off; this runs the situation in a child
/// process (`selfimprove zmq-stall-check`) with those options, so an abort fails the test
/// instead of killing the test runner.
@Suite("A stalled socket whose peer hangs up")
struct ZMQStallRunTests {
    @Test(.timeLimit(.minutes(2)))
    func aSocketStalledPastItsHighWaterMarkSurvivesItsPeerHangingUpWithTheDefaultOptions() async throws {
        let check = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["zmq-stall-check"])
        let line = await check.nextLine(timeout: .seconds(60))
        let ending = await check.waitForTermination()
        #expect(ending.status == 0 && ending.signal == nil, "the process did not survive (\(ending)): \(check.standardErrorTail.suffix(2000))")
        let text = try #require(line, "no result line")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(result["alive"] as? Bool == true)
        // The input was stalled: far more was sent than a high-water mark of 100 holds, and
        // what reached the stalled socket before the hang-up was drained afterwards.
        #expect((result["sent"] as? Int ?? 0) >= 100 && (result["received"] as? Int ?? 0) >= 100, "\(result)")
    }

    /// The check can fail: with ZMTP heartbeats on (the old default, 1 s), libzmq 4.3.4 aborts
    /// in this situation (`Assertion failed: !_io_error (src/stream_engine_base.cpp:331)`).
    @Test(.timeLimit(.minutes(2)))
    func withZMTPHeartbeatsTheSameSituationAborts() async throws {
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"   // the backtracer would wait on the aborted process
        let check = try ChildProcess(executable: RunTestSupport.executable(), arguments: ["zmq-stall-check", "--zmtp-heartbeat-ms", "1000"],
                                     environment: environment)
        let ending = await check.waitForTermination()
        #expect(ending.signal == SIGABRT, "expected libzmq's abort, got \(ending): \(check.standardErrorTail.suffix(1000))")
        #expect(check.standardErrorTail.contains("!_io_error"))
    }
}
