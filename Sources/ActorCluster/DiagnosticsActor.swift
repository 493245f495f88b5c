import Distributed
import Foundation
import Synchronization
import Wire

/// A probe every node can host: echo, a deliberate failure and a delay. The smoke run, the
/// benchmarks and the tests call it; operators can use it to check that a node answers.
public distributed actor DiagnosticsActor: ClusterCallable {
    public typealias ActorSystem = ClusterSystem

    /// The receptionist key nodes list their diagnostics actor under.
    public static let key = ReceptionKey<DiagnosticsActor>("diagnostics")

    public static let wireMethods: [WireMethod<DiagnosticsActor>] = [
        .init("Diagnostics.echo") { try await $0.echo($1.next()) },
        .init("Diagnostics.fail") { try await $0.fail($1.next()) },
        .init("Diagnostics.sleep") { try await $0.sleep($1.next()) },
        .init("Diagnostics.status") { actor, _ in try await actor.status() },
    ]

    private let nodeName: String
    private let served = Atomic<UInt64>(0)
    private let sleeping = Atomic<UInt64>(0)

    public init(actorSystem: ClusterSystem) {
        self.actorSystem = actorSystem
        self.nodeName = actorSystem.configuration.nodeName
    }

    /// Returns the request's payload and sequence number, with this node's name.
    public distributed func echo(_ request: Selfimprove_V1_EchoRequest) -> Selfimprove_V1_EchoReply {
        served.add(1, ordering: .relaxed)
        var reply = Selfimprove_V1_EchoReply()
        reply.sequence = request.sequence
        reply.payload = request.payload
        reply.nodeName = nodeName
        return reply
    }

    /// Always throws ``DiagnosticsError`` with the given message.
    public distributed func fail(_ request: Selfimprove_V1_FailRequest) throws {
        served.add(1, ordering: .relaxed)
        throw DiagnosticsError(message: request.message)
    }

    /// Waits the requested time, then answers; a cancelled call (caller gave up) stops at once.
    public distributed func sleep(_ request: Selfimprove_V1_SleepRequest) async throws -> Selfimprove_V1_Empty {
        served.add(1, ordering: .relaxed)
        sleeping.add(1, ordering: .relaxed)
        defer { sleeping.subtract(1, ordering: .relaxed) }
        try await Task.sleep(for: .milliseconds(Int(request.milliseconds)))
        return Selfimprove_V1_Empty()
    }

    /// The node's name, calls served and resident memory.
    public distributed func status() -> Selfimprove_V1_NodeStatus {
        var status = Selfimprove_V1_NodeStatus()
        status.nodeName = nodeName
        status.callsServed = served.load(ordering: .relaxed)
        status.residentBytes = ProcessMemory.residentBytes() ?? 0
        status.sleeping = sleeping.load(ordering: .relaxed)
        return status
    }
}

/// The error ``DiagnosticsActor/fail(_:)`` throws.
public struct DiagnosticsError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { "DiagnosticsError: \(message)" }
}

/// Resident and peak memory of this process, from `/proc/self/status` (Linux).
public enum ProcessMemory {
    /// Current resident set size (`VmRSS`) in bytes.
    public static func residentBytes() -> UInt64? { read("VmRSS:", pid: nil) }
    /// Peak resident set size (`VmHWM`) in bytes.
    public static func peakResidentBytes(pid: Int32? = nil) -> UInt64? { read("VmHWM:", pid: pid) }

    private static func read(_ field: String, pid: Int32?) -> UInt64? {
        let path = pid.map { "/proc/\($0)/status" } ?? "/proc/self/status"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(field) {
            let number = line.dropFirst(field.count).split(whereSeparator: { $0 == " " || $0 == "\t" }).first.flatMap { UInt64($0) }
            return number.map { $0 * 1024 }
        }
        return nil
    }
}
