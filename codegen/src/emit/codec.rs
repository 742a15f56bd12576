//! The `StructCodec` implementation of one struct: read, write and size, with only the
//! version checks each field needs.

use proc_macro2::{Ident, Literal, TokenStream};
use quote::{format_ident, quote};

use super::types::{condition_expr, default_value, version_condition};
use crate::model::{Field, Message, Struct, Type};
use crate::naming::{snake, type_ident};
use crate::versions::Versions;

/// Emits code for the fields of one struct of one message.
pub struct CodecEmitter<'a> {
    message: &'a Message,
    strukt: &'a Struct,
}

impl<'a> CodecEmitter<'a> {
    /// An emitter for `strukt`, a struct of `message`.
    pub fn new(message: &'a Message, strukt: &'a Struct) -> Self {
        CodecEmitter { message, strukt }
    }

    fn valid(&self) -> Versions {
        self.message.valid
    }

    fn has_tags(&self) -> bool {
        self.message.has_flexible()
    }

    /// `let flexible = ...;` for the message's flexible versions.
    fn flexible_binding(&self) -> TokenStream {
        let flexible = condition_expr(&version_condition(self.message.flexible, self.valid()));
        quote!(let flexible = #flexible;)
    }

    /// The expression telling whether this field uses compact encodings.
    fn compact(&self, field: &Field) -> TokenStream {
        match field.flexible_override {
            Some(range) => condition_expr(&version_condition(range, self.valid())),
            None => quote!(flexible),
        }
    }

    fn path(&self, field: &Field) -> String {
        format!("{}.{}", self.strukt.name, snake(&field.name))
    }

    fn tagged_fields(&self) -> Vec<&'a Field> {
        let mut tagged: Vec<&Field> = self
            .strukt
            .fields
            .iter()
            .filter(|f| f.tag.is_some() && !f.tagged.is_empty())
            .collect();
        tagged.sort_by_key(|f| f.tag);
        tagged
    }

    /// The complete `impl StructCodec`.
    pub fn emit(&self) -> TokenStream {
        let name = type_ident(&self.strukt.name);
        let read = self.emit_read();
        let write = self.emit_write();
        let size = self.emit_size();
        let min_size = self.emit_min_size();
        quote! {
            impl StructCodec for #name {
                fn read(buf: &mut Bytes, version: i16) -> Result<Self, DecodeError> { #read }
                fn write<W: WriteBuf>(&self, buf: &mut W, version: i16) -> Result<(), EncodeError> { #write }
                fn size(&self, version: i16) -> usize { #size }
                fn min_size(version: i16) -> usize { #min_size }
            }
        }
    }

    // ---- the smallest encoding ----

    /// `min_size`: a `match` on the version over the sizes [`min_struct_size`] computes
    /// for each valid version, with the open ends covering versions outside the range the
    /// way the other version checks do (as the nearest valid version).
    fn emit_min_size(&self) -> TokenStream {
        let valid = self.valid();
        let mut runs: Vec<(i16, i16, usize)> = Vec::new();
        for version in valid.lowest..=valid.highest {
            let size = min_struct_size(self.message, self.strukt, version);
            match runs.last_mut() {
                Some((_, hi, last)) if *last == size => *hi = version,
                _ => runs.push((version, version, size)),
            }
        }
        if runs.len() <= 1 {
            let size = runs.first().map_or(0, |run| run.2);
            return quote!(#size);
        }
        let last = runs.len() - 1;
        let arms = runs.iter().enumerate().map(|(i, &(lo, hi, size))| {
            let pattern = if i == 0 {
                let hi = Literal::i16_unsuffixed(hi);
                quote!(..=#hi)
            } else if i == last {
                quote!(_)
            } else if lo == hi {
                let lo = Literal::i16_unsuffixed(lo);
                quote!(#lo)
            } else {
                let (lo, hi) = (Literal::i16_unsuffixed(lo), Literal::i16_unsuffixed(hi));
                quote!(#lo..=#hi)
            };
            quote!(#pattern => #size,)
        });
        quote!(match version { #(#arms)* })
    }

    // ---- reading ----

    fn emit_read(&self) -> TokenStream {
        let flexible = self.flexible_binding();
        let mut body = Vec::new();
        let mut inits = Vec::new();
        for field in &self.strukt.fields {
            let local = local_ident(field);
            let member = super::field_member(field);
            let default = default_value(field);
            let tagged = field.tag.is_some() && !field.tagged.is_empty();
            let mutability = if tagged { quote!(mut) } else { quote!() };
            let value = match version_condition(field.regular, self.valid()) {
                _ if field.regular.is_empty() => default,
                None => self.read_field(field),
                Some(cond) => {
                    let read = self.read_field(field);
                    quote!(if #cond { #read } else { #default })
                }
            };
            body.push(quote!(let #mutability #local = #value;));
            inits.push(quote!(#member: #local));
        }
        if self.has_tags() {
            let arms = self.tagged_fields().into_iter().map(|field| {
                let tag = Literal::u32_unsuffixed(field.tag.unwrap_or_default());
                let guard = version_condition(field.tagged, self.valid()).map(|c| quote!(if #c));
                let local = local_ident(field);
                let read = self.read_field(field);
                let path = self.path(field);
                quote! {
                    #tag #guard => {
                        let before = buf.len();
                        #local = #read;
                        codec::check_tagged_size(tag, size, before - buf.len()).map_err(|e| e.at(#path))?;
                    }
                }
            });
            let struct_name = &self.strukt.name;
            body.push(quote! {
                let mut unknown_tagged_fields = Vec::new();
                if flexible {
                    let count = codec::read_unsigned_varint(buf).map_err(|e| e.at(#struct_name))?;
                    for _ in 0..count {
                        let tag = codec::read_unsigned_varint(buf).map_err(|e| e.at(#struct_name))?;
                        let size = codec::read_unsigned_varint(buf).map_err(|e| e.at(#struct_name))? as usize;
                        match tag {
                            #(#arms)*
                            _ => unknown_tagged_fields.push(
                                codec::read_raw_tagged_field(buf, tag, size).map_err(|e| e.at(#struct_name))?,
                            ),
                        }
                    }
                }
            });
            inits.push(quote!(unknown_tagged_fields));
        }
        quote! {
            #flexible
            #(#body)*
            Ok(Self { #(#inits),* })
        }
    }

    /// Reads a present field, honouring the versions in which it may be null.
    fn read_field(&self, field: &Field) -> TokenStream {
        let compact = self.compact(field);
        let path = self.path(field);
        if !field.is_optional() {
            return read_value(&field.ty, &compact, &path);
        }
        let nullable = read_nullable(&field.ty, &compact, &path);
        match version_condition(field.nullable, field.versions) {
            None => nullable,
            Some(cond) => {
                let plain = read_value(&field.ty, &compact, &path);
                quote!(if #cond { #nullable } else { Some(#plain) })
            }
        }
    }

    // ---- writing ----

    fn emit_write(&self) -> TokenStream {
        let flexible = self.flexible_binding();
        let mut body = Vec::new();
        for field in &self.strukt.fields {
            let member = super::field_member(field);
            let path = self.path(field);
            if let Some(cond) = version_condition(field.versions, self.valid()) {
                if !field.ignorable {
                    let default = default_value(field);
                    body.push(quote! {
                        if !(#cond) && self.#member != #default {
                            return Err(EncodeError::non_default_field(#path, version));
                        }
                    });
                }
            }
            if field.regular.is_empty() {
                continue;
            }
            let write = self.write_field(field, &Value::field(&member));
            match version_condition(field.regular, self.valid()) {
                None => body.push(write),
                Some(cond) => body.push(quote!(if #cond { #write })),
            }
        }
        if self.has_tags() {
            let tagged = self.tagged_fields();
            let presence: Vec<TokenStream> = tagged
                .iter()
                .map(|field| {
                    let member = super::field_member(field);
                    let present = present_ident(field);
                    let cond = condition_expr(&version_condition(field.tagged, self.valid()));
                    let default = default_value(field);
                    quote! {
                        let #present = #cond && self.#member != #default;
                        if #present { count += 1; }
                    }
                })
                .collect();
            let writes = tagged.iter().map(|field| {
                let member = super::field_member(field);
                let present = present_ident(field);
                let tag = Literal::u32_unsuffixed(field.tag.unwrap_or_default());
                let size = self.size_field(field, &Value::field(&member));
                let write = self.write_field(field, &Value::field(&member));
                quote! {
                    if #present {
                        codec::write_unknown_tags_before(buf, &mut unknown, #tag);
                        codec::write_unsigned_varint(buf, #tag);
                        codec::write_unsigned_varint(buf, (#size) as u32);
                        #write
                    }
                }
            });
            let mutability = if tagged.is_empty() {
                quote!()
            } else {
                quote!(mut)
            };
            body.push(quote! {
                if flexible {
                    let #mutability count = self.unknown_tagged_fields.len();
                    #(#presence)*
                    codec::write_unsigned_varint(buf, count as u32);
                    let mut unknown = self.unknown_tagged_fields.iter().peekable();
                    #(#writes)*
                    codec::write_unknown_tags_before(buf, &mut unknown, u32::MAX);
                }
            });
        }
        quote! {
            #flexible
            #(#body)*
            Ok(())
        }
    }

    /// Writes a field's value.
    fn write_field(&self, field: &Field, value: &Value) -> TokenStream {
        let compact = self.compact(field);
        let path = self.path(field);
        if !field.is_optional() {
            return write_value(&field.ty, value, &compact, &path);
        }
        let nullable_cond = version_condition(field.nullable, field.versions);
        let null_allowed = condition_expr(&nullable_cond);
        let inner = write_value(&field.ty, &Value::binding("inner"), &compact, &path);
        let marker = match field.ty {
            Type::Struct(_) => {
                quote! { if #null_allowed { codec::write_struct_presence(buf, true); } }
            }
            _ => quote!(),
        };
        let null = write_null(&field.ty, &compact);
        let value = value.by_ref();
        quote! {
            match #value {
                Some(inner) => { #marker #inner }
                None => {
                    if #null_allowed { #null } else {
                        return Err(EncodeError::null_not_allowed(#path, version));
                    }
                }
            }
        }
    }

    // ---- sizing ----

    fn emit_size(&self) -> TokenStream {
        let flexible = self.flexible_binding();
        let mut body = Vec::new();
        for field in &self.strukt.fields {
            if field.regular.is_empty() {
                continue;
            }
            let member = super::field_member(field);
            let size = self.size_field(field, &Value::field(&member));
            match version_condition(field.regular, self.valid()) {
                None => body.push(quote!(len += #size;)),
                Some(cond) => body.push(quote!(if #cond { len += #size; })),
            }
        }
        if self.has_tags() {
            let fields = self.tagged_fields();
            let mutability = if fields.is_empty() {
                quote!()
            } else {
                quote!(mut)
            };
            let tagged = fields.into_iter().map(|field| {
                let member = super::field_member(field);
                let cond = condition_expr(&version_condition(field.tagged, self.valid()));
                let default = default_value(field);
                let tag = Literal::u32_unsuffixed(field.tag.unwrap_or_default());
                let size = self.size_field(field, &Value::field(&member));
                quote! {
                    if #cond && self.#member != #default {
                        let size = #size;
                        count += 1;
                        len += codec::unsigned_varint_len(#tag) + codec::unsigned_varint_len(size as u32) + size;
                    }
                }
            });
            body.push(quote! {
                if flexible {
                    let #mutability count = self.unknown_tagged_fields.len();
                    len += codec::raw_tagged_fields_len(&self.unknown_tagged_fields);
                    #(#tagged)*
                    len += codec::unsigned_varint_len(count as u32);
                }
            });
        }
        if body.is_empty() {
            return quote!(0);
        }
        quote! {
            #flexible
            let mut len = 0usize;
            #(#body)*
            len
        }
    }

    /// The encoded size of a field's value.
    fn size_field(&self, field: &Field, value: &Value) -> TokenStream {
        let compact = self.compact(field);
        if !field.is_optional() {
            return size_value(&field.ty, value, &compact);
        }
        let null_allowed = condition_expr(&version_condition(field.nullable, field.versions));
        let inner = size_value(&field.ty, &Value::binding("inner"), &compact);
        let marker = match field.ty {
            Type::Struct(_) => quote!(usize::from(#null_allowed) + ),
            _ => quote!(),
        };
        let null = null_size(&field.ty, &compact);
        let value = value.by_ref();
        quote! {
            match #value {
                Some(inner) => #marker #inner,
                None => #null,
            }
        }
    }
}

/// A value being written or sized: a field of `self` (a place) or a reference bound by a
/// loop or a match (`item`, `inner`), so the emitted code needs no `*&` or `(&x).len()`.
#[derive(Clone)]
struct Value {
    tokens: TokenStream,
    is_ref: bool,
}

impl Value {
    fn field(member: &Ident) -> Value {
        Value {
            tokens: quote!(self.#member),
            is_ref: false,
        }
    }

    fn binding(name: &str) -> Value {
        let ident = format_ident!("{name}");
        Value {
            tokens: quote!(#ident),
            is_ref: true,
        }
    }

    /// For method calls (`.len()`, `.iter()`): auto-deref handles both forms.
    fn place(&self) -> &TokenStream {
        &self.tokens
    }

    /// A reference to the value.
    fn by_ref(&self) -> TokenStream {
        let tokens = &self.tokens;
        if self.is_ref {
            quote!(#tokens)
        } else {
            quote!(&#tokens)
        }
    }

    /// The value itself, for `Copy` scalars.
    fn copied(&self) -> TokenStream {
        let tokens = &self.tokens;
        if self.is_ref {
            quote!(*#tokens)
        } else {
            quote!(#tokens)
        }
    }
}

/// The local variable holding a field while a struct is read (prefixed so that a field
/// named `Version` or `Buf` cannot shadow the codec's own variables).
fn local_ident(field: &Field) -> Ident {
    format_ident!("f_{}", snake(&field.name))
}

fn present_ident(field: &Field) -> Ident {
    format_ident!("present_{}", snake(&field.name))
}

fn error_context(path: &str) -> TokenStream {
    quote!(.map_err(|e| e.at(#path))?)
}

/// Reads a non-null value of `ty`.
fn read_value(ty: &Type, compact: &TokenStream, path: &str) -> TokenStream {
    let ctx = error_context(path);
    match ty {
        Type::Bool => quote!(codec::read_bool(buf)#ctx),
        Type::Int8 => quote!(codec::read_i8(buf)#ctx),
        Type::Int16 => quote!(codec::read_i16(buf)#ctx),
        Type::Uint16 => quote!(codec::read_u16(buf)#ctx),
        Type::Int32 => quote!(codec::read_i32(buf)#ctx),
        Type::Uint32 => quote!(codec::read_u32(buf)#ctx),
        Type::Int64 => quote!(codec::read_i64(buf)#ctx),
        Type::Float64 => quote!(codec::read_f64(buf)#ctx),
        Type::Uuid => quote!(codec::read_uuid(buf)#ctx),
        Type::String => quote!(codec::read_string(buf, #compact)#ctx),
        Type::Bytes | Type::Records => quote!(codec::read_bytes(buf, #compact)#ctx),
        Type::Struct(name) => {
            let name = type_ident(name);
            quote!(<#name as StructCodec>::read(buf, version)#ctx)
        }
        Type::Array(element) => {
            let min = min_size_expr(element, compact);
            let element = read_value(element, compact, path);
            quote! {{
                let count = codec::read_array_len(buf, #compact)#ctx;
                let mut items = codec::bounded_vec(count, buf.len(), #min);
                for _ in 0..count { items.push(#element); }
                items
            }}
        }
    }
}

/// The fewest bytes an array element of type `ty` takes: the bound that keeps a declared
/// count from reserving room for more elements than the remaining input can hold.
fn min_size_expr(ty: &Type, compact: &TokenStream) -> TokenStream {
    if let Some(size) = fixed_size(ty) {
        return quote!(#size);
    }
    match ty {
        Type::String => quote!(codec::min_string_len(#compact)),
        Type::Bytes | Type::Records | Type::Array(_) => quote!(codec::min_bytes_len(#compact)),
        Type::Struct(name) => {
            let name = type_ident(name);
            quote!(<#name as StructCodec>::min_size(version))
        }
        _ => unreachable!("scalar types have fixed sizes"),
    }
}

/// The fewest bytes `strukt` of `message` takes at `version`: its regular fields at their
/// smallest (empty, zero, or null where the version allows it) and, in flexible versions,
/// an empty tag buffer. Tagged fields may be absent.
fn min_struct_size(message: &Message, strukt: &Struct, version: i16) -> usize {
    let mut size = usize::from(message.flexible.contains(version));
    for field in &strukt.fields {
        if !field.regular.contains(version) {
            continue;
        }
        let compact = field
            .flexible_override
            .unwrap_or(message.flexible)
            .contains(version);
        let nullable = field.nullable.contains(version);
        size += min_value_size(message, &field.ty, compact, nullable, version);
    }
    size
}

fn min_value_size(
    message: &Message,
    ty: &Type,
    compact: bool,
    nullable: bool,
    version: i16,
) -> usize {
    if let Some(size) = fixed_size(ty) {
        return size;
    }
    let prefix = |classic| if compact { 1 } else { classic };
    match ty {
        Type::String => prefix(2),
        Type::Bytes | Type::Records | Type::Array(_) => prefix(4),
        // A null struct is its one-byte marker; a present one adds the marker when the
        // version allows null.
        Type::Struct(_) if nullable => 1,
        Type::Struct(name) => message
            .structs
            .iter()
            .find(|s| &s.name == name)
            .map_or(0, |s| min_struct_size(message, s, version)),
        _ => unreachable!("scalar types have fixed sizes"),
    }
}

/// Reads a value of `ty` that may be null, as an `Option`.
fn read_nullable(ty: &Type, compact: &TokenStream, path: &str) -> TokenStream {
    let ctx = error_context(path);
    match ty {
        Type::String => quote!(codec::read_nullable_string(buf, #compact)#ctx),
        Type::Bytes | Type::Records => quote!(codec::read_nullable_bytes(buf, #compact)#ctx),
        Type::Struct(_) => {
            let value = read_value(ty, compact, path);
            quote!(if codec::read_struct_presence(buf)#ctx { Some(#value) } else { None })
        }
        Type::Array(element) => {
            let min = min_size_expr(element, compact);
            let element = read_value(element, compact, path);
            quote! {
                match codec::read_nullable_array_len(buf, #compact)#ctx {
                    None => None,
                    Some(count) => {
                        let mut items = codec::bounded_vec(count, buf.len(), #min);
                        for _ in 0..count { items.push(#element); }
                        Some(items)
                    }
                }
            }
        }
        // The model only allows nullable strings, bytes, records, structs and arrays.
        _ => {
            let value = read_value(ty, compact, path);
            quote!(Some(#value))
        }
    }
}

/// Writes a non-null value.
fn write_value(ty: &Type, value: &Value, compact: &TokenStream, path: &str) -> TokenStream {
    let ctx = error_context(path);
    let (copied, by_ref, place) = (value.copied(), value.by_ref(), value.place());
    match ty {
        Type::Bool => quote!(codec::write_bool(buf, #copied);),
        Type::Int8 => quote!(codec::write_i8(buf, #copied);),
        Type::Int16 => quote!(codec::write_i16(buf, #copied);),
        Type::Uint16 => quote!(codec::write_u16(buf, #copied);),
        Type::Int32 => quote!(codec::write_i32(buf, #copied);),
        Type::Uint32 => quote!(codec::write_u32(buf, #copied);),
        Type::Int64 => quote!(codec::write_i64(buf, #copied);),
        Type::Float64 => quote!(codec::write_f64(buf, #copied);),
        Type::Uuid => quote!(codec::write_uuid(buf, #by_ref);),
        Type::String => quote!(codec::write_string(buf, #by_ref, #compact)#ctx;),
        Type::Bytes | Type::Records => quote!(codec::write_bytes(buf, #by_ref, #compact)#ctx;),
        Type::Struct(_) => quote!(StructCodec::write(#by_ref, buf, version)#ctx;),
        Type::Array(element) => {
            let element = write_value(element, &Value::binding("item"), compact, path);
            quote! {
                codec::write_array_len(buf, #place.len(), #compact)#ctx;
                for item in #place.iter() { #element }
            }
        }
    }
}

fn write_null(ty: &Type, compact: &TokenStream) -> TokenStream {
    match ty {
        Type::String => quote!(codec::write_null_string(buf, #compact);),
        Type::Struct(_) => quote!(codec::write_struct_presence(buf, false);),
        // Bytes, records and arrays share the null encoding.
        _ => quote!(codec::write_null_bytes(buf, #compact);),
    }
}

/// The fixed size of a scalar type.
fn fixed_size(ty: &Type) -> Option<usize> {
    Some(match ty {
        Type::Bool | Type::Int8 => 1,
        Type::Int16 | Type::Uint16 => 2,
        Type::Int32 | Type::Uint32 => 4,
        Type::Int64 | Type::Float64 => 8,
        Type::Uuid => 16,
        _ => return None,
    })
}

/// The size of a non-null value.
fn size_value(ty: &Type, value: &Value, compact: &TokenStream) -> TokenStream {
    if let Some(size) = fixed_size(ty) {
        return quote!(#size);
    }
    let (by_ref, place) = (value.by_ref(), value.place());
    match ty {
        Type::String => quote!(codec::string_len(#by_ref, #compact)),
        Type::Bytes | Type::Records => quote!(codec::bytes_len(#place.len(), #compact)),
        Type::Struct(_) => quote!(StructCodec::size(#by_ref, version)),
        Type::Array(element) => {
            let items = match fixed_size(element) {
                Some(size) => quote!(#place.len() * #size),
                None => {
                    let element = size_value(element, &Value::binding("item"), compact);
                    quote!(#place.iter().map(|item| #element).sum::<usize>())
                }
            };
            quote!(codec::array_len_len(#place.len(), #compact) + #items)
        }
        _ => unreachable!("scalar types have fixed sizes"),
    }
}

fn null_size(ty: &Type, compact: &TokenStream) -> TokenStream {
    match ty {
        Type::String => quote!(codec::null_string_len(#compact)),
        Type::Struct(_) => quote!(1usize),
        _ => quote!(codec::null_bytes_len(#compact)),
    }
}
