import Foundation
import SwiftProtobuf
import Wire

/// A voted record as the coordinator keeps it until the trainer acknowledges it: its protobuf
/// encoding, made once (the journal's *completed* entry and the trainer stream carry these
/// bytes: ``Selfimprove_V1_JournalEncodedCompleted``, ``Selfimprove_V1_EncodedRecordBatch``),
/// and the few fields the coordinator reads. Not the record itself: the window of
/// unacknowledged records is the coordinator's largest state, so it holds each record once.
struct EncodedRecord {
    let sequence: UInt64
    let accepted: Bool
    /// Paths with text (not given up), as the stored counters count them.
    let pathsWithText: Int
    let bytes: Data

    init(_ record: Selfimprove_V1_TrainingRecord) {
        sequence = record.sequence
        accepted = record.accepted
        pathsWithText = record.paths.reduce(0) { $0 + ($1.givenUp ? 0 : 1) }
        // Serializing a proto3 message built in memory cannot fail (no required fields, no Any).
        bytes = (try? record.serializedData()) ?? Data()
    }
}
