import Foundation
import SQLKit
import TollgateCore

/// The prompt estimate's calibration cells (``PromptCalibration``), shared by every instance on
/// one database: each adds its own samples and reads everyone's.
extension SQLStore {
    public func calibrationCells() async throws -> PromptCalibration.Cells {
        try await serial { db in
            var cells: PromptCalibration.Cells = [:]
            for row in try await db.raw("SELECT provider, model, cell, weight, log_sum FROM estimate_calibration").all() {
                // A cell this version does not know (written by a newer one) is left to it.
                guard let cell = PromptCalibration.Cell(name: try row.decode(column: "cell", as: String.self)) else { continue }
                let subject = PromptCalibration.Subject(
                    provider: try row.decode(column: "provider", as: String.self), model: try row.decode(column: "model", as: String.self)
                )
                cells[subject, default: [:]][cell] = PromptCalibration.Sums(
                    weight: try row.decode(column: "weight", as: Double.self), logSum: try row.decode(column: "log_sum", as: Double.self)
                )
            }
            return cells
        }
    }

    public func addCalibration(_ cells: PromptCalibration.Cells, now: Date) async throws {
        guard !cells.isEmpty else { return }
        try await serial { db in
            try await Self.transaction(db) { db in
                for (subject, subjectCells) in cells {
                    for (cell, sums) in subjectCells {
                        try await db.raw(
                            """
                            INSERT INTO estimate_calibration (provider, model, cell, weight, log_sum, updated_at)
                            VALUES (\(bind: subject.provider), \(bind: subject.model), \(bind: cell.name), \(bind: sums.weight), \(bind: sums.logSum), \(bind: Self.ms(now)))
                            ON CONFLICT (provider, model, cell) DO UPDATE SET weight = estimate_calibration.weight + excluded.weight,
                                log_sum = estimate_calibration.log_sum + excluded.log_sum, updated_at = excluded.updated_at
                            """
                        ).run()
                    }
                }
            }
        }
    }
}
