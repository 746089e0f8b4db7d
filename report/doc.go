// Package report is the agent's side of fleet reporting (docs/reporting.md):
// enrollment (Client.Enroll, Credentials saved 0600 in the state directory),
// a bounded on-disk Queue of audit-log lines, and a Reporter that writes
// every event to the installation's audit log, queues each line once it is
// durable, and sends the queue to the server's /api/v1/events in batches,
// in order, removing lines only after the server acknowledged them.
//
// Delivery is at least once from the agent and exactly once at the server:
// the server stores events by (install ID, seq), so a batch resent after a
// lost answer, or after a crash between the server's answer and the queue's
// acknowledgement, counts once. A crash between the audit log's append and
// the queue's is repaired at Open, which queues again the log's lines the
// queue never had; a torn queue line is cut off (it is in the log). The
// queue's bound (lines and bytes) drops the oldest segment when crossed,
// counts the lines in Stats.Dropped and writes a Dropped event, which is
// itself reported.
package report
