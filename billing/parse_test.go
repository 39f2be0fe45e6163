package billing_test

import (
	"strings"
	"testing"

	"github.com/vms-project/vms/billing"
	"github.com/vms-project/vms/config"
)

func TestParseCarrierOddInput(t *testing.T) {
	cfg := config.Defaults().API.Billing.Reconcile
	unix := cfg
	unix.TimeFormat = "unix"
	for _, tc := range []struct {
		name string
		cfg  config.Reconcile
		in   string
		rows int
		want string // error text; "" for none
	}{
		{"bom and crlf", cfg, "\ufeffcall_id,billed_seconds\r\nsip-1,3\r\n", 1, ""},
		{"short rows with the used columns", unix, "call_id,billed_seconds,start_time,x\nsip-1,3\nsip-2,4,1772359200,y,z\n", 2, ""},
		{"row without a used column", cfg, "call_id,x,billed_seconds\nsip-1,3\n", 0, "line 2 has 2 columns: no column billed_seconds"},
		{"multi-line quoted id", cfg, "call_id,billed_seconds\n\"a\nb\",1\nsip-2,x\n", 0, "line 4: billed_seconds \"x\""},
		{"duplicate column", cfg, "call_id,billed_seconds,call_id\nsip-1,3,x\n", 0, `column "call_id" appears more than once`},
		{"NaN seconds", cfg, "call_id,billed_seconds\nsip-1,NaN\n", 0, "is not a number of seconds"},
		{"infinite seconds", cfg, "call_id,billed_seconds\nsip-1,1e309\n", 0, "is not a number of seconds"},
		{"year 0", cfg, "call_id,billed_seconds,start_time\nsip-1,1,0000-01-01T00:00:00Z\n", 0, "in year 0"},
		{"negative unix", unix, "call_id,billed_seconds,start_time\nsip-1,1,-1\n", 0, "not a Unix time"},
		{"huge unix", unix, "call_id,billed_seconds,start_time\nsip-1,1,1e300\n", 0, "not a Unix time"},
		{"huge id", cfg, "call_id,billed_seconds\n" + strings.Repeat("x", 300) + ",1\n", 0, "300 bytes long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := billing.ParseCarrier(strings.NewReader(tc.in), tc.cfg)
			if tc.want == "" && (err != nil || len(rows) != tc.rows) {
				t.Fatalf("%d rows, %v; want %d", len(rows), err, tc.rows)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}
