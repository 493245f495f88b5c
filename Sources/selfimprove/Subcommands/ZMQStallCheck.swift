import ArgumentParser
import CommandLineSupport
import Foundation
import ZeroMQ

/// `selfimprove zmq-stall-check`: the situation in which libzmq aborts a process that uses
/// ZMTP heartbeats (libzmq #3937, #4364, #4767), with this project's socket options, for a
/// test to run in a child process: a DEALER stops reading until its input is full past the
/// high-water mark, the ROUTER that flooded it hangs up, time passes (heartbeat timers fire),
/// then the DEALER drains. Prints one JSON line with what it received and exits 0 if the
/// process survived; an abort ends it by SIGABRT.
struct ZMQStallCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zmq-stall-check",
        abstract: "Stall a socket's input past its high-water mark, hang up its peer, then drain (a regression check).",
        shouldDisplay: false
    )

    @Option(help: "ZMTP heartbeat interval in milliseconds for both sockets (default: the project's default, off).")
    var zmtpHeartbeatMs: Int?

    @Option(help: "Seconds to wait after the hang-up before draining.")
    var wait: Double = 4

    func run() throws {
        var options = ZMQSocketOptions()
        options.receiveHighWaterMark = 100
        options.sendHighWaterMark = 100
        if let zmtpHeartbeatMs { options.zmtpHeartbeatInterval = .milliseconds(zmtpHeartbeatMs) }
        let context = try ZMQContext()
        var router: ZMQSocket? = try ZMQSocket(context: context, type: .router, options: options)
        let endpoint = try router!.bind("tcp://127.0.0.1:*")
        var dealerOptions = options
        dealerOptions.routingID = Array("stalled".utf8)
        let dealer = try ZMQSocket(context: context, type: .dealer, options: dealerOptions)
        try dealer.connect(endpoint)
        try dealer.send([Array("hello".utf8)])
        guard router!.waitReadable(timeoutMs: 5000), let hello = try router!.receive() else { throw ValidationError("the DEALER never reached the ROUTER") }
        // Flood the DEALER, which does not read, until every queue on the way is full.
        let payload = [UInt8](repeating: 7, count: 16 << 10)
        var sent = 0, blocked = 0
        while blocked < 200 {
            if Self.send([hello[0], payload], on: router!) {
                sent += 1
                blocked = 0
            } else {
                blocked += 1
                Thread.sleep(forTimeInterval: 0.005)
            }
        }
        // The peer hangs up while the DEALER's input is stopped.
        router = nil
        Thread.sleep(forTimeInterval: wait)
        var received = 0
        while dealer.waitReadable(timeoutMs: 500) {
            while try dealer.receive() != nil { received += 1 }
        }
        printJSONLine(["sent": sent, "received": received, "alive": true])
    }

    /// Sends without waiting; false when the message does not fit (the high-water mark) or
    /// cannot be sent.
    private static func send(_ message: [[UInt8]], on socket: ZMQSocket) -> Bool {
        (try? socket.send(message)) != nil
    }
}
