import CVerifierBuild
import Foundation
import SelfImproveCore
import SwiftProtobuf
import Testing
import Verifiers
import Wire

/// The C verifier node's scoring (`peers/c-verifier/src/scoring.c`) through its one-shot
/// companion `wire-probe`, built with AddressSanitizer and UndefinedBehaviorSanitizer: C reads
/// the envelope the Swift code encodes, Swift reads the C answer, and the scores are the Swift
/// verifier's (`chain: [arithmetic_steps]`) to the last bit.
@Suite("C verifier scoring", .serialized)
struct CVerifierScoringTests {
    /// Runs the probe on `input`; returns its status, standard output and standard error.
    private func probe(_ input: Data) throws -> (status: Int32, output: Data, log: String) {
        let binaries = try CVerifierBuild.build(sanitized: true)
        let process = Process()
        process.executableURL = binaries.probe
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Written from another thread: a large input must not block on a full pipe while the
        // probe waits to write its answer.
        let writer = Thread {
            stdin.fileHandleForWriting.write(input)
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let log = String(decoding: stderr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, output, log)
    }

    private func call(_ groups: [Selfimprove_V1_ScoreRequest]) throws -> Data {
        var batch = Selfimprove_V1_ScoreBatch()
        batch.groups = groups
        var call = Selfimprove_V1_Call()
        call.callID = 0xFEED_0000_0000_0042
        call.method = "Verifier.scoreGroups"
        call.arguments = [try batch.serializedData()]
        call.timeoutMs = 30_000
        var envelope = Selfimprove_V1_Envelope()
        envelope.call = call
        return try envelope.serializedData()
    }

    private func group(_ id: String, _ paths: [String], critic: String = "") -> Selfimprove_V1_ScoreRequest {
        var request = Selfimprove_V1_ScoreRequest()
        request.questionID = id
        request.question = "Ana has 5 apples. Then Ana gets 3 more."
        request.answerKind = "number"
        request.paths = paths
        request.critic = critic
        if id == "q-0" { request.gold = "8" }
        return request
    }

    /// Texts that probe every branch of the scanner: operators, group commas, decimals, long
    /// numbers, negative operands, division by zero, numbers inside numbers, multi-byte signs,
    /// and seeded random strings over the same alphabet.
    static func corpus() -> [String] {
        var texts = [
            " 5 + 3 = 8. The answer is 8.", "5 + 3 = 9", "12 - 15 = -3", "-4 * -2 = 8", "7 x 6 = 42", "7 × 6 = 42", "84 ÷ 4 = 21", "1 / 0 = 0",
            "1,234 + 1 = 1,235", "1,2345 + 1 = 1,2346", "12,345,678 * 2 = 24,691,356", "1234,567 + 1 = 1235", "0.1 + 0.2 = 0.3", "2.5 * 4 = 10.0",
            "3.14159 * 2 = 6.28318", "10 / 3 = 3.333333", "10 / 3 = 3.33", "99999999999999999999 + 1 = 100000000000000000000",
            "123456789012345678 * 10 = 1234567890123456780", "0.000000000000000000000001 + 0 = 0", "a5 + 3 = 8", "x5 + 3 = 8", "1.5 + 3 = 4.5",
            "5.+3=8", "5 +\n3\t=\r8", "5 + 3 =", "5 + = 8", "= 8", "", "no steps here", "5 - - 3 = 8", "5--3=8", "6 / 2 = 3 and 6 / 3 = 2 and 2 + 2 = 5",
            String(repeating: "1 + 1 = 2 ", count: 1200), "००५ + ३ = ८", "5 ＋ 3 = 8", "1e3 + 1 = 1001", "007 + 1 = 8", "0,123 + 1 = 124",
        ]
        var generator = SeededGenerator(state: 2026)
        let alphabet = ["0", "1", "2", "5", "9", "12", "1,000", ".", ",", "-", "+", "*", "x", "/", "×", "÷", "=", " ", "\n", "a", "The answer is ", "3.5", "-7"]
        for _ in 0 ..< 400 {
            let length = Int(generator.next() % 24) + 1
            texts.append((0 ..< length).map { _ in alphabet[Int(generator.next() % UInt64(alphabet.count))] }.joined())
        }
        return texts
    }

    @Test func cScoresEveryTextAsTheSwiftVerifierDoes() async throws {
        let texts = Self.corpus()
        let groups = stride(from: 0, to: texts.count, by: 16).enumerated().map { position, start in
            group("q-\(position)", Array(texts[start ..< min(start + 16, texts.count)]))
        }
        let result = try probe(try call(groups))
        #expect(result.status == 0, "\(result.log)")
        #expect(!result.log.contains("Sanitizer"), "\(result.log)")
        let answer = try Selfimprove_V1_Envelope(serializedBytes: result.output)
        guard case let .reply(reply)? = answer.body else {
            Issue.record("not a reply: \(answer)")
            return
        }
        #expect(reply.callID == 0xFEED_0000_0000_0042)
        let scores = try Selfimprove_V1_ScoreBatchReply(serializedBytes: reply.result)
        #expect(scores.verifier == "c-wire-probe")
        #expect(scores.groups.count == groups.count)
        #expect(scores.groups.allSatisfy { !$0.answersIncluded && $0.scores.allSatisfy { !$0.hasAnswer } }, "the coordinator extracts the answers")
        // The Swift verifier node's chain for `chain: [arithmetic_steps]`, given an empty path 0.
        let chain = VerifierChain([VerifierChain.Entry(ArithmeticStepVerifier())])
        let question = Question(id: "q", text: "", kind: .number)
        var compared = 0
        for (request, scored) in zip(groups, scores.groups) {
            #expect(scored.scores.count == request.paths.count)
            for (path, score) in zip(request.paths, scored.scores) {
                let expected = path.isEmpty ? 0 : try await chain.combinedScore(path, for: question, answer: nil)
                #expect(score.combined.bitPattern == expected.bitPattern, "'\(path.prefix(80))': C \(score.combined), Swift \(expected)")
                compared += 1
            }
        }
        #expect(compared == texts.count)
    }

    @Test func aJudgeCriticIsAnsweredWithTheSwiftVerifiersError() throws {
        for (critic, message) in [("process", "critic 'process' needs a judge_backend on this verifier"),
                                  ("bogus", "unknown critic 'bogus' (known: process, value)")] {
            let result = try probe(try call([group("q-0", ["5 + 3 = 8"]), group("q-1", ["x"], critic: critic)]))
            #expect(result.status == 0, "\(result.log)")
            let answer = try Selfimprove_V1_Envelope(serializedBytes: result.output)
            guard case let .error(error)? = answer.body else {
                Issue.record("not an error: \(answer)")
                continue
            }
            #expect(error.callID == 0xFEED_0000_0000_0042)
            #expect(error.code == "remote.threw")
            #expect(error.message == message)
        }
    }

    @Test func hostileBytesAreRefusedWithoutACrash() throws {
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
            let result = try probe(input)
            #expect(result.status == 2, "\(input as NSData): \(result.log)")
            #expect(!result.log.contains("Sanitizer"), "\(result.log)")
        }
    }
}

/// SplitMix64, for a corpus that is the same on every run.
private struct SeededGenerator {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
