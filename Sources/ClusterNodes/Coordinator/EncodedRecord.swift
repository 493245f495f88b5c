import Foundation
import SwiftProtobuf
import Wire

/// A voted record with its protobuf encoding, made once: the journal's *completed* entry and
/// the trainer stream carry the same bytes (``Selfimprove_V1_JournalEncodedCompleted``,
/// ``Selfimprove_V1_EncodedRecordBatch``), so the coordinator does not encode a record twice.
struct EncodedRecord {
    let record: Selfimprove_V1_TrainingRecord
    let bytes: Data

    init(_ record: Selfimprove_V1_TrainingRecord) {
        self.record = record
        // Serializing a proto3 message built in memory cannot fail (no required fields, no Any).
        self.bytes = (try? record.serializedData()) ?? Data()
    }

    var sequence: UInt64 { record.sequence }
}
