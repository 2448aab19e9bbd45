package wire

// Typed reads of a decoded header. Each returns ok=false when the key is
// absent or holds another JSON type; an integer is a JSON integer literal
// (Number.IsInt), never a bool or a float literal, as Python's checks.

// Str is o[key] when it is a string.
func (o *Object) Str(key string) (string, bool) {
	v, _ := o.Get(key)
	s, ok := v.(string)
	return s, ok
}

// Int is o[key] when it is an integer within int64.
func (o *Object) Int(key string) (int64, bool) {
	v, _ := o.Get(key)
	return intValue(v)
}

// Uint is o[key] when it is a non-negative integer within uint64.
func (o *Object) Uint(key string) (uint64, bool) {
	v, _ := o.Get(key)
	n, ok := v.(Number)
	if !ok {
		return 0, false
	}
	return n.Uint64()
}

// Float is o[key] when it is any JSON number (an integer too), or a Go
// float64 or int set by the caller.
func (o *Object) Float(key string) (float64, bool) {
	v, _ := o.Get(key)
	switch x := v.(type) {
	case Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

// Bool is o[key] when it is true or false.
func (o *Object) Bool(key string) (bool, bool) {
	v, _ := o.Get(key)
	b, ok := v.(bool)
	return b, ok
}

// Obj is o[key] when it is an object.
func (o *Object) Obj(key string) (*Object, bool) {
	v, _ := o.Get(key)
	x, ok := v.(*Object)
	return x, ok
}

// List is o[key] when it is a list.
func (o *Object) List(key string) ([]any, bool) {
	v, _ := o.Get(key)
	x, ok := v.([]any)
	return x, ok
}

// Strings is o[key] when it is a list of strings only.
func (o *Object) Strings(key string) ([]string, bool) {
	list, ok := o.List(key)
	if !ok {
		return nil, false
	}
	out := make([]string, len(list))
	for i, v := range list {
		if out[i], ok = v.(string); !ok {
			return nil, false
		}
	}
	return out, true
}
