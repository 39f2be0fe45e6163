package telephony

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/pion/sdp/v3"
)

// Format is one RTP payload format of an m=audio line.
type Format struct {
	// PT is the RTP payload type.
	PT uint8
	// Name is the encoding name: "PCMU", "PCMA", "telephone-event", or whatever
	// the peer declared. Empty for a dynamic payload type without a=rtpmap.
	Name string
	// Rate is the RTP clock rate in Hz.
	Rate uint32
}

// String returns the encoding name, or "PT n" for an unnamed format.
func (f Format) String() string {
	if f.Name == "" {
		return "PT " + strconv.Itoa(int(f.PT))
	}
	return f.Name
}

// IsAudio reports whether f carries audio samples, that is it is neither
// telephone-event (RFC 4733) nor comfort noise, and it has a name.
func (f Format) IsAudio() bool {
	return f.Name != "" && !strings.EqualFold(f.Name, "telephone-event") && !strings.EqualFold(f.Name, "CN")
}

// The formats vms sends and understands.
var (
	// FormatPCMU is G.711 µ-law, static payload type 0.
	FormatPCMU = Format{PT: 0, Name: "PCMU", Rate: 8000}
	// FormatPCMA is G.711 A-law, static payload type 8.
	FormatPCMA = Format{PT: 8, Name: "PCMA", Rate: 8000}
	// FormatTelephoneEvent is RFC 4733 DTMF on the usual dynamic payload type 101.
	FormatTelephoneEvent = Format{PT: 101, Name: "telephone-event", Rate: 8000}
)

// ErrInvalidSDP wraps every ParseSDP failure; match it with errors.Is.
// (Negotiate's failures wrap ErrNoCommonCodec, declared with the other call
// outcomes in outcome.go.)
var ErrInvalidSDP = errors.New("invalid SDP")

// staticFormats are the RFC 3551 static audio payload types that may appear
// on an m= line without a=rtpmap.
var staticFormats = map[uint8]Format{
	0:  FormatPCMU,
	3:  {PT: 3, Name: "GSM", Rate: 8000},
	4:  {PT: 4, Name: "G723", Rate: 8000},
	5:  {PT: 5, Name: "DVI4", Rate: 8000},
	6:  {PT: 6, Name: "DVI4", Rate: 16000},
	7:  {PT: 7, Name: "LPC", Rate: 8000},
	8:  FormatPCMA,
	9:  {PT: 9, Name: "G722", Rate: 8000},
	10: {PT: 10, Name: "L16", Rate: 44100},
	11: {PT: 11, Name: "L16", Rate: 44100},
	12: {PT: 12, Name: "QCELP", Rate: 8000},
	13: {PT: 13, Name: "CN", Rate: 8000},
	15: {PT: 15, Name: "G728", Rate: 8000},
	18: {PT: 18, Name: "G729", Rate: 8000},
}

// Media is the audio part of a session description.
type Media struct {
	// Addr is the c= address and the m=audio port. Port 0 means the stream
	// was refused (RFC 3264 §6).
	Addr netip.AddrPort
	// Formats are the m= payload formats in preference order. Static payload
	// types (0, 8, ...) are known without a=rtpmap.
	Formats []Format
	// Direction is "sendrecv" (the default), "sendonly", "recvonly" or "inactive".
	Direction string
}

// Refused reports whether the audio stream was refused (m=audio 0).
func (m Media) Refused() bool { return m.Addr.Port() == 0 }

// ParseSDP parses a session description and returns its first m=audio
// stream. Errors wrap ErrInvalidSDP and say what is wrong: not SDP, no
// m=audio line, no c= address, a bad port or payload type.
//
// A refused stream (m=audio 0) is not an error: Media.Addr has port 0 and the
// address is the c= address if there is one, else the unspecified IPv4 address.
func ParseSDP(body []byte) (Media, error) {
	if len(strings.TrimSpace(string(body))) == 0 {
		return Media{}, fmt.Errorf("%w: empty body", ErrInvalidSDP)
	}
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return Media{}, fmt.Errorf("%w: not SDP: %w", ErrInvalidSDP, err)
	}

	var md *sdp.MediaDescription
	for _, d := range sd.MediaDescriptions {
		if d != nil && d.MediaName.Media == "audio" {
			md = d
			break
		}
	}
	if md == nil {
		return Media{}, fmt.Errorf("%w: no m=audio line", ErrInvalidSDP)
	}

	port := md.MediaName.Port.Value
	if port < 0 || port > 65535 {
		return Media{}, fmt.Errorf("%w: bad m=audio port %d", ErrInvalidSDP, port)
	}

	var m Media
	formats, err := parseFormats(md)
	if err != nil {
		return Media{}, err
	}
	m.Formats = formats
	m.Direction = direction(&sd, md)

	ci := md.ConnectionInformation
	if ci == nil {
		ci = sd.ConnectionInformation
	}
	addr, addrErr := connectionAddr(ci)
	if port == 0 {
		if addrErr != nil {
			addr = netip.IPv4Unspecified()
		}
		m.Addr = netip.AddrPortFrom(addr, 0)
		return m, nil
	}
	if addrErr != nil {
		return Media{}, addrErr
	}
	if len(m.Formats) == 0 {
		return Media{}, fmt.Errorf("%w: m=audio line has no payload types", ErrInvalidSDP)
	}
	m.Addr = netip.AddrPortFrom(addr, uint16(port))
	return m, nil
}

// connectionAddr returns the IP of a c= line.
func connectionAddr(ci *sdp.ConnectionInformation) (netip.Addr, error) {
	if ci == nil || ci.Address == nil || ci.Address.Address == "" {
		return netip.Addr{}, fmt.Errorf("%w: no c= address", ErrInvalidSDP)
	}
	if ci.NetworkType != "IN" {
		return netip.Addr{}, fmt.Errorf("%w: c= network type %q, want IN", ErrInvalidSDP, ci.NetworkType)
	}
	a, err := netip.ParseAddr(ci.Address.Address)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: c= address %q is not an IP address", ErrInvalidSDP, ci.Address.Address)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%w: c= address %q has a zone", ErrInvalidSDP, ci.Address.Address)
	}
	return a.Unmap(), nil
}

// parseFormats reads the m= payload types and resolves them with a=rtpmap or
// the static table.
func parseFormats(md *sdp.MediaDescription) ([]Format, error) {
	rtpmaps := make(map[uint8]Format)
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		f, ok := parseRtpmap(a.Value)
		if ok {
			rtpmaps[f.PT] = f
		}
	}

	formats := make([]Format, 0, len(md.MediaName.Formats))
	for _, s := range md.MediaName.Formats {
		n, err := strconv.ParseUint(s, 10, 8)
		if err != nil || n > 127 {
			return nil, fmt.Errorf("%w: bad payload type %q on m=audio line", ErrInvalidSDP, s)
		}
		pt := uint8(n)
		if f, ok := rtpmaps[pt]; ok {
			formats = append(formats, f)
		} else if f, ok := staticFormats[pt]; ok {
			formats = append(formats, f)
		} else {
			formats = append(formats, Format{PT: pt})
		}
	}
	return formats, nil
}

// parseRtpmap parses "<pt> <name>/<rate>[/<channels>]".
func parseRtpmap(v string) (Format, bool) {
	ptStr, rest, ok := strings.Cut(strings.TrimSpace(v), " ")
	if !ok {
		return Format{}, false
	}
	pt, err := strconv.ParseUint(ptStr, 10, 8)
	if err != nil || pt > 127 {
		return Format{}, false
	}
	parts := strings.Split(strings.TrimSpace(rest), "/")
	if len(parts) < 2 || parts[0] == "" {
		return Format{}, false
	}
	rate, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil {
		return Format{}, false
	}
	return Format{PT: uint8(pt), Name: canonicalName(parts[0]), Rate: uint32(rate)}, true
}

// canonicalName spells the names vms knows the way the constants do.
func canonicalName(name string) string {
	for _, f := range []Format{FormatPCMU, FormatPCMA, FormatTelephoneEvent, staticFormats[13], staticFormats[18]} {
		if strings.EqualFold(name, f.Name) {
			return f.Name
		}
	}
	return name
}

// direction returns the media direction attribute, media level first.
func direction(sd *sdp.SessionDescription, md *sdp.MediaDescription) string {
	for _, attrs := range [][]sdp.Attribute{md.Attributes, sd.Attributes} {
		for _, a := range attrs {
			switch a.Key {
			case "sendrecv", "sendonly", "recvonly", "inactive":
				return a.Key
			}
		}
	}
	return "sendrecv"
}

// BuildSDP builds a session description with one sendrecv m=audio stream on
// host:port carrying formats in preference order, with an a=rtpmap line per
// format, a=fmtp:<pt> 0-16 for telephone-event and a=ptime:20.
// sessionID is used for both the o= session id and version.
func BuildSDP(sessionID uint64, host netip.Addr, port uint16, formats []Format) []byte {
	host = host.Unmap()
	addrType := "IP4"
	if host.Is6() {
		addrType = "IP6"
	}
	hostStr := host.WithZone("").String()

	md := &sdp.MediaDescription{
		MediaName: sdp.MediaName{
			Media:  "audio",
			Port:   sdp.RangedPort{Value: int(port)},
			Protos: []string{"RTP", "AVP"},
		},
	}
	for _, f := range formats {
		md.MediaName.Formats = append(md.MediaName.Formats, strconv.Itoa(int(f.PT)))
	}
	for _, f := range formats {
		if f.Name == "" {
			continue
		}
		md.Attributes = append(md.Attributes, sdp.Attribute{
			Key:   "rtpmap",
			Value: fmt.Sprintf("%d %s/%d", f.PT, f.Name, f.Rate),
		})
		if strings.EqualFold(f.Name, FormatTelephoneEvent.Name) {
			md.Attributes = append(md.Attributes, sdp.Attribute{
				Key:   "fmtp",
				Value: fmt.Sprintf("%d 0-16", f.PT),
			})
		}
	}
	md.Attributes = append(md.Attributes,
		sdp.Attribute{Key: "ptime", Value: "20"},
		sdp.Attribute{Key: "sendrecv"},
	)

	sd := sdp.SessionDescription{
		Version: 0,
		Origin: sdp.Origin{
			Username:       "vms",
			SessionID:      sessionID,
			SessionVersion: sessionID,
			NetworkType:    "IN",
			AddressType:    addrType,
			UnicastAddress: hostStr,
		},
		SessionName: "vms",
		ConnectionInformation: &sdp.ConnectionInformation{
			NetworkType: "IN",
			AddressType: addrType,
			Address:     &sdp.Address{Address: hostStr},
		},
		TimeDescriptions:  []sdp.TimeDescription{{Timing: sdp.Timing{StartTime: 0, StopTime: 0}}},
		MediaDescriptions: []*sdp.MediaDescription{md},
	}
	b, err := sd.Marshal()
	if err != nil {
		// Marshal of a description built here cannot fail; keep the
		// signature simple for callers.
		panic("telephony: BuildSDP: " + err.Error())
	}
	return b
}

// Negotiate picks the audio format and the telephone-event format of a call
// from an offer and its answer (RFC 3264). The audio format is the first
// format of the answer that is audio and appears in the offer, matched by
// name and clock rate; its payload type is the answer's. dtmf is the answer's
// telephone-event format when both sides have one, else nil.
// When nothing matches, the error wraps ErrNoCommonCodec and lists both sides,
// e.g. "no common codec: offered PCMU,PCMA; answered G729".
func Negotiate(offer []Format, answer []Format) (audio Format, dtmf *Format, err error) {
	found := false
	for _, a := range answer {
		if !a.IsAudio() || !containsFormat(offer, a) {
			continue
		}
		audio, found = a, true
		break
	}
	if !found {
		return Format{}, nil, fmt.Errorf("%w: offered %s; answered %s", ErrNoCommonCodec, formatList(offer), formatList(answer))
	}
	for _, a := range answer {
		if strings.EqualFold(a.Name, FormatTelephoneEvent.Name) && containsFormat(offer, a) {
			d := a
			dtmf = &d
			break
		}
	}
	return audio, dtmf, nil
}

// containsFormat reports whether list has a format with f's name and rate.
func containsFormat(list []Format, f Format) bool {
	for _, o := range list {
		if o.Name != "" && strings.EqualFold(o.Name, f.Name) && (o.Rate == f.Rate || o.Rate == 0 || f.Rate == 0) {
			return true
		}
	}
	return false
}

// formatList renders formats as "PCMU,PCMA" for error messages.
func formatList(fs []Format) string {
	if len(fs) == 0 {
		return "nothing"
	}
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.String()
	}
	return strings.Join(names, ",")
}
