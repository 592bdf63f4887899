//! A serde `Deserializer` over the positioned tree: component configs are decoded straight from
//! the nodes, so an error raised anywhere (a wrong type, an unknown key, a bad duration) carries
//! the line and column of the node it concerns.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};

use super::node::{resolve_plain, Mark, Node, NodeKind, Plain, ScalarStyle};

/// A decoding error, positioned at the innermost node it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError {
    pub message: String,
    pub mark: Option<Mark>,
}

impl DeError {
    fn at(mut self, mark: &Mark) -> DeError {
        if self.mark.is_none() {
            self.mark = Some(mark.clone());
        }
        self
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            mark: None,
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

fn unexpected(node: &Node) -> Unexpected<'_> {
    match &node.kind {
        NodeKind::Null => Unexpected::Unit,
        NodeKind::Scalar(s, _) => Unexpected::Str(s),
        NodeKind::Seq(_) => Unexpected::Seq,
        NodeKind::Map(_) => Unexpected::Map,
    }
}

fn scalar_text(node: &Node) -> Option<&str> {
    match &node.kind {
        NodeKind::Scalar(s, _) => Some(s),
        _ => None,
    }
}

fn number_error(node: &Node, expected: &str) -> DeError {
    let found = match scalar_text(node) {
        Some(s) => format!("`{s}`"),
        None => node.describe().to_string(),
    };
    de::Error::custom(format!("expected {expected}, found {found}"))
}

macro_rules! int_method {
    ($method:ident, $visit:ident, $ty:ty, $what:expr) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let parsed = scalar_text(self).and_then(|s| match resolve_plain(s) {
                Plain::Int(i) => <$ty>::try_from(i).ok(),
                Plain::UInt(u) => <$ty>::try_from(u).ok(),
                _ => None,
            });
            match parsed {
                Some(v) => visitor.$visit(v),
                None => Err(number_error(self, $what)),
            }
            .map_err(|e: DeError| e.at(&self.mark))
        }
    };
}

struct SeqAccess<'de> {
    items: std::slice::Iter<'de, Node>,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'de> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(n) => seed.deserialize(n).map(Some),
            None => Ok(None),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapAccess<'de> {
    entries: std::slice::Iter<'de, (Node, Node)>,
    value: Option<&'de Node>,
}

impl<'de> de::MapAccess<'de> for MapAccess<'de> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.entries.next() {
            Some((k, v)) => {
                self.value = Some(v);
                seed.deserialize(k)
                    .map(Some)
                    .map_err(|e: DeError| e.at(&k.mark))
            }
            None => Ok(None),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(v) => seed.deserialize(v),
            None => Err(de::Error::custom("value requested before its key")),
        }
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct EnumAccess<'de> {
    variant: &'de Node,
    value: Option<&'de Node>,
}

impl<'de> de::EnumAccess<'de> for EnumAccess<'de> {
    type Error = DeError;
    type Variant = VariantAccess<'de>;
    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), DeError> {
        let v = seed
            .deserialize(self.variant)
            .map_err(|e: DeError| e.at(&self.variant.mark))?;
        Ok((
            v,
            VariantAccess {
                value: self.value,
                mark: self.variant.mark.clone(),
            },
        ))
    }
}

struct VariantAccess<'de> {
    value: Option<&'de Node>,
    mark: Mark,
}

impl<'de> VariantAccess<'de> {
    fn value(&self) -> Result<&'de Node, DeError> {
        self.value.ok_or_else(|| {
            DeError::at(
                de::Error::custom("this variant takes a value: write it as `variant: {…}`"),
                &self.mark,
            )
        })
    }
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'de> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            None => Ok(()),
            Some(v) if v.is_null() => Ok(()),
            Some(v) => Err(DeError::at(
                de::Error::custom("this variant takes no value"),
                &v.mark,
            )),
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self.value()?)
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(self.value()?, visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_map(self.value()?, visitor)
    }
}

impl<'de> de::Deserializer<'de> for &'de Node {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.kind {
            NodeKind::Null => visitor.visit_unit(),
            NodeKind::Scalar(s, ScalarStyle::Quoted) => visitor.visit_borrowed_str(s),
            NodeKind::Scalar(s, ScalarStyle::Plain) => match resolve_plain(s) {
                Plain::Null => visitor.visit_unit(),
                Plain::Bool(b) => visitor.visit_bool(b),
                Plain::Int(i) => visitor.visit_i64(i),
                Plain::UInt(u) => visitor.visit_u64(u),
                Plain::Float(f) => visitor.visit_f64(f),
                Plain::Str => visitor.visit_borrowed_str(s),
            },
            NodeKind::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter(),
            }),
            NodeKind::Map(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                value: None,
            }),
        }
        .map_err(|e: DeError| e.at(&self.mark))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match scalar_text(self).map(resolve_plain) {
            Some(Plain::Bool(b)) => visitor.visit_bool(b),
            _ => Err(number_error(self, "`true` or `false`")),
        }
        .map_err(|e: DeError| e.at(&self.mark))
    }

    int_method!(deserialize_i8, visit_i8, i8, "an integer (i8)");
    int_method!(deserialize_i16, visit_i16, i16, "an integer (i16)");
    int_method!(deserialize_i32, visit_i32, i32, "an integer");
    int_method!(deserialize_i64, visit_i64, i64, "an integer");
    int_method!(deserialize_u8, visit_u8, u8, "a whole number from 0 to 255");
    int_method!(
        deserialize_u16,
        visit_u16,
        u16,
        "a whole number from 0 to 65535"
    );
    int_method!(
        deserialize_u32,
        visit_u32,
        u32,
        "a non-negative whole number"
    );
    int_method!(
        deserialize_u64,
        visit_u64,
        u64,
        "a non-negative whole number"
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let parsed = scalar_text(self).and_then(|s| match resolve_plain(s) {
            Plain::Float(f) => Some(f),
            Plain::Int(i) => Some(i as f64),
            Plain::UInt(u) => Some(u as f64),
            _ => None,
        });
        match parsed {
            Some(f) => visitor.visit_f64(f),
            None => Err(number_error(self, "a number")),
        }
        .map_err(|e: DeError| e.at(&self.mark))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.kind {
            NodeKind::Scalar(s, _) => visitor.visit_borrowed_str(s),
            _ => Err(de::Error::invalid_type(unexpected(self), &visitor)),
        }
        .map_err(|e: DeError| e.at(&self.mark))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.kind {
            NodeKind::Scalar(s, _) => visitor.visit_borrowed_bytes(s.as_bytes()),
            _ => Err(de::Error::invalid_type(unexpected(self), &visitor)),
        }
        .map_err(|e: DeError| e.at(&self.mark))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_null() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
        .map_err(|e: DeError| e.at(&self.mark))
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_null() {
            visitor.visit_unit()
        } else {
            Err(de::Error::invalid_type(unexpected(self), &visitor))
        }
        .map_err(|e: DeError| e.at(&self.mark))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor
            .visit_newtype_struct(self)
            .map_err(|e: DeError| e.at(&self.mark))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.kind {
            NodeKind::Seq(items) => visitor.visit_seq(SeqAccess {
                items: items.iter(),
            }),
            _ if self.is_null() => visitor.visit_seq(SeqAccess { items: [].iter() }),
            _ => Err(de::Error::invalid_type(unexpected(self), &visitor)),
        }
        .map_err(|e: DeError| e.at(&self.mark))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.kind {
            NodeKind::Map(entries) => visitor.visit_map(MapAccess {
                entries: entries.iter(),
                value: None,
            }),
            _ if self.is_null() => visitor.visit_map(MapAccess {
                entries: [].iter(),
                value: None,
            }),
            _ => Err(de::Error::invalid_type(unexpected(self), &visitor)),
        }
        .map_err(|e: DeError| e.at(&self.mark))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.kind {
            NodeKind::Scalar(..) => visitor.visit_enum(EnumAccess {
                variant: self,
                value: None,
            }),
            NodeKind::Map(entries) if entries.len() == 1 => {
                let (k, v) = &entries[0];
                visitor.visit_enum(EnumAccess {
                    variant: k,
                    value: Some(v),
                })
            }
            _ => Err(de::Error::invalid_type(unexpected(self), &visitor)),
        }
        .map_err(|e: DeError| e.at(&self.mark))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

impl<'de> IntoDeserializer<'de, DeError> for &'de Node {
    type Deserializer = &'de Node;
    fn into_deserializer(self) -> Self::Deserializer {
        self
    }
}
