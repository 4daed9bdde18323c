package broker

// Each way the code writes a reason into an audit event, for
// TestAuditReasonsCatchRot.

type AuditEvent struct{ Reason string }

const ReasonByConst = "by_const"

func record(e *AuditEvent) {}

func fail(reason string) { record(&AuditEvent{Reason: reason}) }

func outcome(ok bool) (reason string) {
	if !ok {
		return "by_return"
	}
	return ""
}

var table = []struct {
	err    string
	reason string
}{
	{"e", "by_table"},
}

func use() {
	record(&AuditEvent{Reason: "by_field"})
	fail("by_call")
	reason := "by_assignment"
	fail(reason)
	// Not reasons: a field of another name, a variable of another name.
	other := "not_a_reason"
	_ = struct{ Why string }{Why: other}
	_ = outcome
	_ = table
}
