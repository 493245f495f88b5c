import Foundation
import SwiftProtobuf
import Testing
import Wire

/// The C code generated from `Protos/` (protobuf-c) reads what the Swift nodes write and
/// writes what they read: `peers/c-verifier/wire_probe.c` answers a verifier call's envelope,
/// built with AddressSanitizer and UndefinedBehaviorSanitizer.
@Suite("C wire probe", .serialized)
struct CWireProbeTests {
    static let folder = GeneratedWireCodeTests.repository.appendingPathComponent("peers/c-verifier")

    /// Runs a command; returns its status and standard output, with standard error in `log`.
    private func run(_ arguments: [String], input: Data = Data()) throws -> (status: Int32, output: Data, log: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.currentDirectoryURL = Self.folder
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(input)
        try stdin.fileHandleForWriting.close()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let log = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output, log)
    }

    private func build() throws -> URL {
        let binary = FileManager.default.temporaryDirectory.appendingPathComponent("wire-probe-\(UUID().uuidString)")
        let flags = try run(["pkg-config", "--cflags", "--libs", "libprotobuf-c"])
        try #require(flags.status == 0, "libprotobuf-c is missing (cluster/setup installs libprotobuf-c-dev): \(flags.log)")
        let sources = try FileManager.default.contentsOfDirectory(atPath: Self.folder.appendingPathComponent("generated").path)
            .filter { $0.hasSuffix(".pb-c.c") }.sorted().map { "generated/\($0)" }
        let compile = try run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                               "-Igenerated", "wire_probe.c"] + sources + String(decoding: flags.output, as: UTF8.self).split(separator: " ").map {
                                   $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty } + ["-o", binary.path])
        try #require(compile.status == 0, "the C probe does not build: \(compile.log)")
        return binary
    }

    @Test func cReadsASwiftCallAndSwiftReadsItsReply() throws {
        let binary = try build()
        defer { try? FileManager.default.removeItem(at: binary) }
        var batch = Selfimprove_V1_ScoreBatch()
        for (index, paths) in [[" 5 + 3 = 8. The answer is 8.", ""], ["only one path"]].enumerated() {
            var request = Selfimprove_V1_ScoreRequest()
            request.questionID = "q-\(index)"
            request.question = "Ana has 5 apples. Then Ana gets 3 more."
            request.answerKind = "number"
            request.paths = paths
            request.critic = index == 1 ? "process" : ""
            if index == 0 { request.gold = "8" }
            batch.groups.append(request)
        }
        var call = Selfimprove_V1_Call()
        call.callID = 0xFEED_0000_0000_0042
        call.method = "Verifier.scoreGroups"
        call.arguments = [try batch.serializedData()]
        call.timeoutMs = 30_000
        var envelope = Selfimprove_V1_Envelope()
        envelope.call = call
        let result = try run([binary.path], input: try envelope.serializedData())
        #expect(result.status == 0, "\(result.log)")
        #expect(result.log.split(separator: "\n") == ["q-0 2 -", "q-1 1 process"], "\(result.log)")
        let answer = try Selfimprove_V1_Envelope(serializedBytes: result.output)
        guard case let .reply(reply)? = answer.body else {
            Issue.record("not a reply: \(answer)")
            return
        }
        #expect(reply.callID == call.callID)
        let scores = try Selfimprove_V1_ScoreBatchReply(serializedBytes: reply.result)
        #expect(scores.verifier == "c-wire-probe")
        #expect(scores.groups.map { $0.scores.map(\.combined) } == [[1, 0], [1]])
        #expect(scores.groups.allSatisfy { $0.scores.allSatisfy { !$0.hasAnswer } }, "absent stays absent")
    }

    @Test func hostileBytesAreRefusedWithoutACrash() throws {
        let binary = try build()
        defer { try? FileManager.default.removeItem(at: binary) }
        var heartbeat = Selfimprove_V1_Envelope()
        heartbeat.heartbeat = Selfimprove_V1_Heartbeat()
        var wrongMethod = Selfimprove_V1_Envelope()
        wrongMethod.call = Selfimprove_V1_Call()
        wrongMethod.call.method = "Verifier.other"
        var badArgument = Selfimprove_V1_Envelope()
        badArgument.call.method = "Verifier.scoreGroups"
        badArgument.call.arguments = [Data([0xFF, 0xFF, 0xFF, 0xFF, 0x0F])]
        let inputs: [Data] = [Data(), Data([0xFF, 0x01, 0x02]), Data(repeating: 0x0A, count: 300), try heartbeat.serializedData(),
                              try wrongMethod.serializedData(), try badArgument.serializedData()]
        for input in inputs {
            let result = try run([binary.path], input: input)
            #expect(result.status == 2, "\(input as NSData): \(result.log)")
            #expect(!result.log.contains("Sanitizer"), "\(result.log)")
        }
    }
}
