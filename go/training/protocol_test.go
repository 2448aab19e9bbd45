package training

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"

	"zmqnode/ml"
	"zmqnode/wire"
)

type goldenArray struct {
	Dtype string `json:"dtype"`
	Shape []int  `json:"shape"`
	Data  string `json:"data"`
}

type golden struct {
	Jobs []struct {
		Frames  []string        `json:"frames"`
		Job     string          `json:"job"`
		Round   int             `json:"round"`
		Chunk   int             `json:"chunk"`
		ReplyTo string          `json:"reply_to"`
		Options json.RawMessage `json:"options"`
		Params  *goldenArray    `json:"params"`
		X       *goldenArray    `json:"x"`
		Y       *goldenArray    `json:"y"`
	} `json:"jobs"`
	Results []struct {
		Frames      []string     `json:"frames"`
		Job         string       `json:"job"`
		Round       int          `json:"round"`
		Chunk       int          `json:"chunk"`
		Trainer     string       `json:"trainer"`
		NSamples    int          `json:"n_samples"`
		Loss        float64      `json:"loss"`
		Error       string       `json:"error"`
		MissingData bool         `json:"missing_data"`
		Params      *goldenArray `json:"params"`
	} `json:"results"`
	BadJobs       []refusal `json:"bad_jobs"`
	BadResults    []refusal `json:"bad_results"`
	TrainRequests []refusal `json:"train_requests"`
	Endpoints     []struct {
		Text  string `json:"text"`
		Valid bool   `json:"valid"`
	} `json:"endpoints"`
}

type refusal struct {
	Frames  []string `json:"frames"`
	Code    string   `json:"code"`
	Message string   `json:"message"`
}

func loadGolden(t *testing.T) golden {
	t.Helper()
	raw, err := os.ReadFile("testdata/protocol.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	return g
}

func unhex(t *testing.T, frames []string) [][]byte {
	t.Helper()
	out := make([][]byte, len(frames))
	for i, f := range frames {
		b, err := hex.DecodeString(f)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

func sameArray(t *testing.T, what string, got *wire.Array, want *goldenArray) {
	t.Helper()
	if (got == nil) != (want == nil) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
	if got == nil {
		return
	}
	data, _ := hex.DecodeString(want.Data)
	if string(got.Dtype) != want.Dtype || !reflect.DeepEqual(got.Shape, want.Shape) || !bytes.Equal(got.Data, data) {
		t.Fatalf("%s: got %s %v, want %s %v", what, got.Dtype, got.Shape, want.Dtype, want.Shape)
	}
}

func sameFrames(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d frames, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d differs:\n got %q\nwant %q", i, got[i], want[i])
		}
	}
}

func TestPythonJobsDecodeAndReencodeByteForByte(t *testing.T) {
	for i, c := range loadGolden(t).Jobs {
		frames := unhex(t, c.Frames)
		j, err := DecodeJob(frames)
		if err != nil {
			t.Fatalf("job %d: %v", i, err)
		}
		if j.JobID != c.Job || j.Round != c.Round || j.Chunk != c.Chunk || j.ReplyTo != c.ReplyTo {
			t.Fatalf("job %d: got %+v", i, j)
		}
		opts, _ := wire.MarshalJSON(j.Options)
		var a, b any
		_ = json.Unmarshal(opts, &a)
		_ = json.Unmarshal(c.Options, &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("job %d options: got %s want %s", i, opts, c.Options)
		}
		sameArray(t, "params", &j.Params, c.Params)
		sameArray(t, "x", j.X, c.X)
		sameArray(t, "y", j.Y, c.Y)
		again, err := EncodeJob(j)
		if err != nil {
			t.Fatal(err)
		}
		sameFrames(t, again, frames)
	}
}

func TestPythonResultsDecodeAndReencodeByteForByte(t *testing.T) {
	for i, c := range loadGolden(t).Results {
		frames := unhex(t, c.Frames)
		r, err := DecodeResult(frames)
		if err != nil {
			t.Fatalf("result %d: %v", i, err)
		}
		if r.JobID != c.Job || r.Round != c.Round || r.Chunk != c.Chunk || r.Trainer != c.Trainer ||
			r.NSamples != c.NSamples || r.Loss != c.Loss || r.Error != c.Error || r.MissingData != c.MissingData {
			t.Fatalf("result %d: got %+v", i, r)
		}
		sameArray(t, "params", r.Params, c.Params)
		again, err := EncodeResult(r)
		if err != nil {
			t.Fatal(err)
		}
		sameFrames(t, again, frames)
	}
}

func checkRefusals(t *testing.T, cases []refusal, decode func([][]byte) error) {
	t.Helper()
	for _, c := range cases {
		err := decode(unhex(t, c.Frames))
		var pe *wire.ProtocolError
		if !errors.As(err, &pe) {
			t.Fatalf("%s: got %v, want a ProtocolError", c.Message, err)
		}
		if string(pe.Code) != c.Code || pe.Message != c.Message {
			t.Errorf("got %s %q, want %s %q", pe.Code, pe.Message, c.Code, c.Message)
		}
	}
}

func TestMalformedJobsAreRefusedWithPythonsCodesAndMessages(t *testing.T) {
	checkRefusals(t, loadGolden(t).BadJobs, func(f [][]byte) error { _, err := DecodeJob(f); return err })
}

func TestMalformedResultsAreRefusedWithPythonsCodesAndMessages(t *testing.T) {
	checkRefusals(t, loadGolden(t).BadResults, func(f [][]byte) error { _, err := DecodeResult(f); return err })
}

func TestReplyToIsAcceptedExactlyAsPythonAcceptsIt(t *testing.T) {
	for _, c := range loadGolden(t).Endpoints {
		if got := ValidEndpoint(c.Text); got != c.Valid {
			t.Errorf("ValidEndpoint(%.40q) = %v, want %v", c.Text, got, c.Valid)
		}
	}
}

func TestRefusedTrainRequestsGetPythonsCodesAndMessages(t *testing.T) {
	for _, c := range loadGolden(t).TrainRequests {
		h, blobs, err := wire.Decode(unhex(t, c.Frames), wire.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		code, message := "", ""
		req, err := ReadTrainRequest(h, blobs, 1<<20)
		if err != nil {
			var pe *wire.ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("%s: %v", c.Message, err)
			}
			code, message = string(pe.Code), pe.Message
		} else {
			raw, _ := h.Get("options")
			if !truthy(raw) {
				raw = &wire.Object{}
			}
			text, _ := wire.MarshalJSON(raw)
			opts, err := ml.ParseOptions(text)
			if err == nil {
				_, err = MakePlan(req, opts, 1)
			}
			if err == nil {
				t.Fatalf("accepted, Python refuses: %s", c.Message)
			}
			code, message = "BAD_INPUT", Message(err)
		}
		if code != c.Code || message != c.Message {
			t.Errorf("got %s %q\nwant %s %q", code, message, c.Code, c.Message)
		}
	}
}
