@testable import ClusterNodes
import Foundation
import SelfImproveCore
import Testing

/// The trainer's hand-written JSON lines read back into the same records, and match what
/// Foundation's encoder writes with sorted keys.
@Suite("Trainer JSON lines")
struct JSONLineEncoderTests {
    private func line(_ record: VoteRecord) -> Data {
        var encoder = JSONLineEncoder()
        JSONLineEncoder.record(record, sequence: 7, into: &encoder)
        return Data(encoder.bytes)
    }

    private struct Line: Codable, Equatable {
        var id: String
        var record: VoteRecord
        var sequence: Int
    }

    @Test(arguments: [false, true])
    func aRecordLineReadsBackAndMatchesFoundationsSortedOutput(refine: Bool) throws {
        var record = VoteRecord(
            id: "q\"1", question: "What is 2 + 2?\nReally?", paths: [
                VoteRecord.Path(index: 0, text: " 2 + 2 = 4. The answer is 4.", answer: "4", sampler: "s-1", modelVersion: "v1", score: 0.25,
                                completionTokens: 12),
                VoteRecord.Path(index: 1, text: "", answer: nil, givenUp: true),
            ],
            majority: "4", confidence: 0.5, accepted: true, keptPaths: [0], gold: "4", majorityCorrect: true, vote: "majority")
        if refine {
            record.vote = nil
            record.method = "refine"
            record.rightAt = 1
            record.reference = 0
            record.labelledBy = "verifier-2"
            record.refinements = [
                VoteRecord.Refinement(path: 1, critique: "Step 1: x\nFeedback: y", outcome: "refined_right", refinement: " 2 + 2 = 4.",
                                      refinementAnswer: "4", refinementScore: 0.75, kept: true, sampler: "s-2", modelVersion: "v1", completionTokens: 30),
                VoteRecord.Refinement(path: 0, critique: "", outcome: "critique_given_up", kept: false),
            ]
        }
        let written = line(record)
        let decoded = try JSONDecoder().decode(Line.self, from: written)
        #expect(decoded == Line(id: record.id, record: record, sequence: 7))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let foundation = try encoder.encode(Line(id: record.id, record: record, sequence: 7))
        #expect(String(decoding: written, as: UTF8.self) == String(decoding: foundation, as: UTF8.self))
    }
}
